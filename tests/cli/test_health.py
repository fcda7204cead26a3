"""``edgemeta health`` against a real ``edgemeta serve`` subprocess: ready, live, not ready
(a real 503), unreachable, and over HTTPS with a real TLS handshake, run as the container's
``HEALTHCHECK`` runs it (the ``edgemeta`` command, a process of its own)."""

from __future__ import annotations

import json
import sqlite3
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_admin_cli import Ran, run_proc
from tests.e2e.procs import ServeProcess, free_port, start
from tests.security.test_tls import wait_ready
from tests.support.pki import Pki, make_pki


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """A plain-HTTP service for the module's read-only checks."""
    proc = start(tmp_path_factory.mktemp("health"))
    proc.wait_ready()
    yield proc
    proc.stop()


def health(url: str, *args: str, **env: str) -> Ran:
    """``python -m edgemeta health ARGS`` (the lean entry point, as the image runs it)."""
    return run_proc(url, "health", *args, timeout=30, **env)


def test_ready_exits_0_and_shows_every_check(served: ServeProcess) -> None:
    r = health(served.url)
    assert r.returncode == 0, r.stderr
    assert "edgemeta readiness" in r.stdout
    assert "/api/v3/health/ready" in r.stdout
    for check in ("database", "migrations", "bus"):
        assert check in r.stdout
    assert "ready" in r.stdout and r.stderr == ""


def test_json_is_the_service_answer(served: ServeProcess) -> None:
    r = health(served.url, "--json")
    assert r.returncode == 0, r.stderr
    body = json.loads(r.stdout)
    assert body["status"] == "ready" and body["statusCode"] == 200
    assert body["checks"]["database"] == {"status": "up"}


def test_live_asks_liveness(served: ServeProcess) -> None:
    r = health(served.url, "--live", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "alive"


def test_nothing_listening_exits_1_and_says_where_to_look() -> None:
    r = health(f"http://127.0.0.1:{free_port()}")
    assert r.returncode == 1
    assert "cannot reach" in r.stderr and "--url/EDGEMETA_URL" in r.stderr


def test_not_ready_503_exits_1_with_the_reason(tmp_path: Path) -> None:
    """A schema behind the code is a real 503 from readiness: here the newest migration's
    row is taken out of the running service's SQLite file."""
    p = start(tmp_path)
    try:
        p.wait_ready()
        with sqlite3.connect(tmp_path / "data" / "edgemeta.db") as db:
            newest = "SELECT max(version) FROM schema_migrations"
            db.execute(f"DELETE FROM schema_migrations WHERE version = ({newest})")
        r = health(p.url)
        assert r.returncode == 1
        assert "not-ready" in r.stdout  # the table still shows the answer
        assert "not-ready" in r.stderr and "restart edgemeta to apply them" in r.stderr
        assert "docs/operations.md#health" in r.stderr  # what to do next
        assert health(p.url, "--live").returncode == 0  # alive though not ready
    finally:
        p.stop()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA and a server certificate for 127.0.0.1/localhost (and client certificates)."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def served_tls(
    tmp_path_factory: pytest.TempPathFactory, pki: Pki
) -> Iterator[tuple[ServeProcess, dict[str, str]]]:
    """A service speaking HTTPS only, and the serve settings that turned it on."""
    settings = {
        "EDGEMETA_TLS_CERT_FILE": str(pki.server.cert),
        "EDGEMETA_TLS_KEY_FILE": str(pki.server.key),
    }
    p = start(tmp_path_factory.mktemp("health-tls"), env=settings)
    base = f"https://127.0.0.1:{p.port}/api/v3"
    wait_ready(p, base, ssl.create_default_context(cafile=str(pki.ca.cert_file)))
    yield p, {**settings, "EDGEMETA_PORT": str(p.port)}
    p.stop()


def test_https_verified_with_ca_file(
    served_tls: tuple[ServeProcess, dict[str, str]], pki: Pki
) -> None:
    p, _ = served_tls
    url = f"https://127.0.0.1:{p.port}"
    r = health(url, "--ca-file", str(pki.ca.cert_file))
    assert r.returncode == 0, r.stderr
    assert f"{url}/api/v3/health/ready" in r.stdout
    by_env = health(url, "--json", EDGEMETA_CA_FILE=str(pki.ca.cert_file))
    assert by_env.returncode == 0, by_env.stderr
    assert json.loads(by_env.stdout)["status"] == "ready"


def test_https_with_an_unknown_ca_fails_the_handshake(
    served_tls: tuple[ServeProcess, dict[str, str]], tmp_path: Path
) -> None:
    p, _ = served_tls
    url = f"https://127.0.0.1:{p.port}"
    untrusted = health(url)  # the system's CAs do not know the test CA
    assert untrusted.returncode == 1
    assert "TLS handshake failed" in untrusted.stderr and "EDGEMETA_CA_FILE" in untrusted.stderr
    stranger = make_pki(tmp_path).ca.cert_file  # a CA that did not sign the server's certificate
    other = health(url, "--ca-file", str(stranger))
    assert other.returncode == 1 and "certificate verify failed" in other.stderr
    plain = health(f"http://127.0.0.1:{p.port}")  # plain HTTP to an HTTPS port
    assert plain.returncode == 1
    missing = health(url, "--ca-file", str(tmp_path / "absent.pem"))
    assert missing.returncode == 1  # 1, not 2: Docker reserves 2
    assert "--ca-file/EDGEMETA_CA_FILE" in missing.stderr


def test_the_image_healthcheck_finds_the_service_from_its_settings(
    served_tls: tuple[ServeProcess, dict[str, str]], pki: Pki
) -> None:
    """``CMD ["edgemeta", "health"]`` in the container: no EDGEMETA_URL, only the serve
    settings of the same environment (the port, TLS on) and the CA file."""
    p, settings = served_tls
    done = run_proc("", "health", EDGEMETA_CA_FILE=str(pki.ca.cert_file), **settings)
    assert done.returncode == 0, done.stderr
    assert f"https://127.0.0.1:{p.port}/api/v3/health/ready" in done.stdout


def test_the_script_answers_without_loading_the_service() -> None:
    """``edgemeta health`` goes through edgemeta.console, which must not import edgemeta.cli
    (uvicorn, the stores, the app): a probe every 15 s should cost little."""
    import subprocess

    code = (
        "import sys; sys.argv = ['edgemeta', 'health', '--help']\n"
        "from edgemeta.console import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('edgemeta.cli', 'uvicorn', 'edgemeta.bootstrap')"
        " if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert "--ca-file" in done.stdout
