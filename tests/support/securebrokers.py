"""Private secured brokers for tests: a Mosquitto and a nats-server on free ports, each with
its own password and a TLS listener whose certificates the test makes itself (with
``cryptography``). The machine's shared brokers are never touched.

A missing binary skips the test locally and fails it under ``CI``, like the other servers.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.brokers import _free_port, _wait_port
from tests.support.pki import Authority

USER = "edge"
PASSWORD = "s3cret-pass"


@dataclass(frozen=True)
class Pki:
    """A CA, a server certificate it signed (for localhost and 127.0.0.1), a client
    certificate it signed, and a second CA nobody should trust."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_ca: Path


def make_pki(directory: Path) -> Pki:
    """A fresh CA with server (localhost, 127.0.0.1) and client certificates, and a rogue CA,
    written into ``directory`` (made by the TLS tests' :class:`tests.support.pki.Authority`)."""
    ca = Authority(directory, "broker")
    server = ca.issue("localhost", server=True)
    client = ca.issue("edgemeta-client", server=False)
    rogue = Authority(directory, "rogue")
    return Pki(
        ca=ca.cert_file,
        server_cert=server.cert,
        server_key=server.key,
        client_cert=client.cert,
        client_key=client.key,
        rogue_ca=rogue.cert_file,
    )


def _require_binary(binary: str) -> None:
    if shutil.which(binary) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{binary} is not installed; CI needs it")
        pytest.skip(f"{binary} is not installed")


@dataclass
class SecureBroker:
    """A running secured broker: a TLS port and a plain port, both password-protected."""

    kind: str
    tls_port: int
    plain_port: int
    pki: Pki
    command: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the broker process (again) on the same ports."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_port(self.tls_port, up=True)
        except TimeoutError:
            raise RuntimeError(f"{self.kind} broker did not start:\n{self.output()}") from None

    def stop(self) -> None:
        """Stop the broker process (a broker outage)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        _wait_port(self.tls_port, up=False)

    def url(self, *, tls: bool = True, credentials: str = "") -> str:
        """The broker's URL (``credentials`` like ``user:pass@``); host ``localhost`` for
        TLS, the name in the server certificate."""
        schemes = {"mqtt": ("mqtts", "mqtt"), "nats": ("tls", "nats")}[self.kind]
        scheme = schemes[0] if tls else schemes[1]
        port = self.tls_port if tls else self.plain_port
        host = "localhost" if tls else "127.0.0.1"
        return f"{scheme}://{credentials}{host}:{port}"

    def set_password(self, user: str, password: str) -> None:
        """Change ``user``'s password in Mosquitto's password file (takes effect on start)."""
        assert self.kind == "mqtt", "only the private Mosquitto has a password file"
        passwd = self.log.parent / "passwd"
        subprocess.run(
            ["mosquitto_passwd", "-b", str(passwd), user, password], check=True, capture_output=True
        )

    def output(self) -> str:
        """What the broker logged."""
        return self.log.read_text(errors="replace")


def _mosquitto(
    workdir: Path, pki: Pki, *, client_certs: bool, users: dict[str, str], acl: str
) -> tuple[list[str], int, int]:
    _require_binary("mosquitto")
    _require_binary("mosquitto_passwd")
    passwd = workdir / "passwd"
    for i, (user, password) in enumerate(users.items()):
        create = ["-c"] if i == 0 else []
        subprocess.run(
            ["mosquitto_passwd", "-b", *create, str(passwd), user, password],
            check=True,
            capture_output=True,
        )
    tls_port, plain_port = _free_port(), _free_port()
    lines = [
        # Run as root, Mosquitto drops to its own user, which cannot read pytest's tmp dir.
        f"user {getpass.getuser()}",
        "persistence false",
        "allow_anonymous false",
        f"password_file {passwd}",
        "set_tcp_nodelay true",
        "max_queued_messages 0",
        f"listener {plain_port} 127.0.0.1",
        f"listener {tls_port} 127.0.0.1",
        f"cafile {pki.ca}",
        f"certfile {pki.server_cert}",
        f"keyfile {pki.server_key}",
    ]
    if client_certs:
        lines.append("require_certificate true")
    if acl:
        (workdir / "acl").write_text(acl)
        lines.insert(4, f"acl_file {workdir / 'acl'}")
    conf = workdir / "mosquitto.conf"
    conf.write_text("\n".join(lines) + "\n")
    return ["mosquitto", "-c", str(conf)], tls_port, plain_port


def _nats(
    workdir: Path, pki: Pki, *, client_certs: bool, users: dict[str, str], acl: str
) -> tuple[list[str], int, int]:
    _require_binary("nats-server")
    # ``acl``, for NATS, is the whole ``authorization`` block (users with permissions).
    authorization = acl or (
        "authorization {\n"
        + "".join(f'  user: "{u}"\n  password: "{p}"\n' for u, p in users.items())
        + "}"
    )
    if not acl and len(users) != 1:
        raise ValueError("several nats users need an authorization block (acl)")
    tls_port = _free_port()
    store = workdir / "jetstream"
    store.mkdir(exist_ok=True)
    verify = "verify: true" if client_certs else ""
    conf = workdir / "nats.conf"
    conf.write_text(
        f"""
listen: "127.0.0.1:{tls_port}"
{authorization}
tls {{
  cert_file: "{pki.server_cert}"
  key_file: "{pki.server_key}"
  ca_file: "{pki.ca}"
  timeout: 2
  {verify}
}}
jetstream {{
  store_dir: "{store}"
}}
"""
    )
    # nats-server serves TLS and plain connections on one port only if told to allow it;
    # the plain-port tests use a second server (nats_password_only).
    return ["nats-server", "-c", str(conf)], tls_port, tls_port


@contextmanager
def secure_broker(
    kind: str,
    workdir: Path,
    *,
    client_certs: bool = False,
    users: dict[str, str] | None = None,
    acl: str = "",
) -> Iterator[SecureBroker]:
    """A private ``kind`` ("mqtt" or "nats") broker requiring user ``USER`` / ``PASSWORD``
    (or ``users``; ``acl``: Mosquitto's ACL file, or nats-server's ``authorization`` block),
    with TLS by a CA of the test's own
    (``client_certs``: also a client certificate)."""
    workdir.mkdir(parents=True, exist_ok=True)
    pki = make_pki(workdir / "pki")
    make = _mosquitto if kind == "mqtt" else _nats
    command, tls_port, plain_port = make(
        workdir, pki, client_certs=client_certs, users=users or {USER: PASSWORD}, acl=acl
    )
    broker = SecureBroker(kind, tls_port, plain_port, pki, command, workdir / f"{kind}.log")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@contextmanager
def nats_password_only(workdir: Path) -> Iterator[int]:
    """A private nats-server requiring ``USER``/``PASSWORD`` without TLS; yields its port."""
    _require_binary("nats-server")
    workdir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log = workdir / "nats-plain.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            ["nats-server", "-a", "127.0.0.1", "-p", str(port), "--user", USER, "--pass", PASSWORD],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_port(port, up=True)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
