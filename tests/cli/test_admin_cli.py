"""The admin CLI against a real running service: ``edgemeta serve`` in a subprocess, and the
CLI run as ``python -m edgemeta ...`` subprocesses pointed at it, as an operator would."""

from __future__ import annotations

import csv
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from edgemeta import __version__
from edgemeta.cli import app
from tests.docs.test_doc_examples import _FENCE as FENCE
from tests.docs.test_doc_examples import ROOT, _run, blocks
from tests.e2e.procs import ServeProcess, free_port, start
from tests.support.pki import Authority

PROFILE_YAML = """\
name: thermostat
manufacturer: Acme
model: T-1000
labels: [hvac]
deviceResources:
  - name: temperature
    properties: {valueType: Float32, readWrite: R, units: C}
"""


def cli_env(url: str, **extra: str) -> dict[str, str]:
    """This environment minus EDGEMETA_* (the developer's own), plus the service's URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEMETA_")}
    env["EDGEMETA_URL"] = url
    env["COLUMNS"] = "200"  # rich tables: wide enough not to fold names in the assertions
    env.update(extra)
    return env


@dataclass
class Ran:
    """What a CLI run left: its exit code and outputs."""

    returncode: int
    stdout: str
    stderr: str


def run(url: str, *args: str, stdin: str | None = None, **env: str) -> Ran:
    """``edgemeta ARGS`` against ``url``, in this process (typer's CliRunner): the same
    commands over real HTTP, without a Python start-up per call."""
    result = CliRunner().invoke(app, list(args), input=stdin, env=cli_env(url, **env))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)


def run_proc(
    url: str, *args: str, stdin: str | None = None, timeout: float = 60, **env: str
) -> Ran:
    """``python -m edgemeta ARGS`` against ``url``, as a process of its own."""
    done = subprocess.run(
        [sys.executable, "-m", "edgemeta", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=cli_env(url, **env),
        timeout=timeout,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def api(served: ServeProcess, path: str, **params: Any) -> Any:
    """The service's answer, straight over HTTP (what the CLI did is checked this way)."""
    return httpx.get(served.url + path, params=params, timeout=10).json()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One service for the module's tests (each test uses names of its own)."""
    proc = start(tmp_path_factory.mktemp("serve"))
    proc.wait_ready()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def base(served: ServeProcess, tmp_path_factory: pytest.TempPathFactory) -> ServeProcess:
    """Two device services and the thermostat profile, added through the CLI."""
    d = tmp_path_factory.mktemp("base")
    (d / "services.json").write_text(
        json.dumps(
            [
                {
                    "name": "svc-a",
                    "baseAddress": "http://127.0.0.1:59900",
                    "adminState": "UNLOCKED",
                },
                {
                    "name": "svc-b",
                    "baseAddress": "http://127.0.0.1:59901",
                    "adminState": "UNLOCKED",
                },
            ]
        )
    )
    (d / "thermostat.yaml").write_text(PROFILE_YAML)
    r = run(served.url, "service", "add", str(d / "services.json"))
    assert r.returncode == 0, r.stderr
    r = run(served.url, "profile", "add", str(d / "thermostat.yaml"))  # via /uploadfile
    assert r.returncode == 0, r.stderr
    assert "201 profile thermostat" in r.stdout
    return served


def device(name: str, service: str = "svc-a", **extra: Any) -> dict[str, Any]:
    """An EdgeX Device object."""
    return {
        "name": name,
        "serviceName": service,
        "profileName": "thermostat",
        "adminState": "UNLOCKED",
        "operatingState": "UP",
        "protocols": {"other": {"Address": "10.0.0.1"}},
        **extra,
    }


def write_csv(
    path: Path,
    names: list[str],
    bad: dict[str, dict[str, str]] | None = None,
    labels: str = "bulk; floor-2",
) -> None:
    """Devices as CSV, EdgeX field names in the header; ``bad`` overrides cells per name."""
    header = [
        "name",
        "serviceName",
        "profileName",
        "adminState",
        "operatingState",
        "labels",
        "description",
        "protocols",
        "properties",
    ]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, header)
        w.writeheader()
        for i, name in enumerate(names):
            row = {
                "name": name,
                "serviceName": "svc-a",
                "profileName": "thermostat",
                "adminState": "UNLOCKED",
                "operatingState": "UP",
                "labels": labels,
                "description": f"device {i}",
                "protocols": json.dumps({"other": {"Address": f"10.1.{i // 250}.{i % 250}"}}),
                "properties": json.dumps({"n": i}),
            }
            row.update((bad or {}).get(name, {}))
            w.writerow(row)


# -- version, help, completion ---------------------------------------------------------------


def test_version_flag_and_help_without_bool_placeholders() -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0, r.output
    assert r.output.strip() == __version__
    top = runner.invoke(app, ["--help"])
    assert "--install-completion" in top.output  # shell completion stays on
    for args in (["--help"], ["serve", "--help"], ["roles", "--help"], ["import", "--help"]):
        r = runner.invoke(app, args, env={"COLUMNS": "200"})
        assert r.exit_code == 0, r.output
        assert "<bool>" not in r.output, args
    serve_help = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "200"}).output
    assert "--core-data" in serve_help
    assert "--no-core-data" in serve_help
    assert "<int>" in serve_help  # options that take a value keep their type


# -- records ---------------------------------------------------------------------------------


def test_device_round_trip_list_get_add_delete(base: ServeProcess, tmp_path: Path) -> None:
    url = base.url
    one = device("rt-1", labels=["roundtrip"])
    r = run(url, "device", "add", "-", stdin=json.dumps(one))
    assert r.returncode == 0, r.stderr
    assert "201 device rt-1" in r.stdout
    (tmp_path / "more.yaml").write_text(
        "- " + json.dumps(device("rt-2", "svc-b")) + "\n- " + json.dumps(device("rt-3")) + "\n"
    )
    assert run(url, "device", "add", str(tmp_path / "more.yaml")).returncode == 0

    listed = json.loads(run(url, "device", "list", "--label", "roundtrip", "--json").stdout)
    assert [d["name"] for d in listed["devices"]] == ["rt-1"]
    by_service = json.loads(run(url, "device", "list", "--service", "svc-b", "--json").stdout)
    assert "rt-2" in [d["name"] for d in by_service["devices"]]
    assert all(d["serviceName"] == "svc-b" for d in by_service["devices"])
    by_profile = run(url, "device", "list", "--profile", "thermostat", "--limit", "2", "--json")
    page = json.loads(by_profile.stdout)
    assert len(page["devices"]) == 2
    assert page["totalCount"] >= 3
    table = run(url, "device", "list", "--label", "roundtrip")
    assert table.returncode == 0
    assert "rt-1" in table.stdout
    assert "svc-a" in table.stdout
    assert "1 of 1 devices" in table.stdout

    got = json.loads(run(url, "device", "get", "rt-1", "--json").stdout)
    assert got["device"]["protocols"] == one["protocols"]
    assert "10.0.0.1" in run(url, "device", "get", "rt-1").stdout

    r = run(url, "device", "delete", "rt-1", "rt-3")
    assert r.returncode == 0, r.stderr
    gone = run(url, "device", "get", "rt-1")
    assert gone.returncode == 1
    assert "device 'rt-1' not found" in gone.stderr
    assert api(base, "/device/name/rt-3")["statusCode"] == 404


def test_watcher_and_enrollment_round_trip(base: ServeProcess, tmp_path: Path) -> None:
    url = base.url
    watcher = {
        "name": "w-rt",
        "serviceName": "svc-a",
        "adminState": "UNLOCKED",
        "identifiers": {"Address": "10\\..*"},
        "discoveredDevice": {"profileName": "thermostat", "adminState": "UNLOCKED"},
    }
    assert run(url, "watcher", "add", "-", stdin=json.dumps(watcher)).returncode == 0
    listed = run(url, "watcher", "list")
    assert "w-rt" in listed.stdout
    assert (
        json.loads(run(url, "watcher", "get", "w-rt", "--json").stdout)["provisionWatcher"][
            "identifiers"
        ]
        == watcher["identifiers"]
    )
    assert run(url, "watcher", "delete", "w-rt").returncode == 0
    assert run(url, "watcher", "get", "w-rt").returncode == 1

    (tmp_path / "enr.yaml").write_text(
        "name: badge-rt\nkind: individual\nregistrationId: badge-rt\n"
        "allocation: {policy: static, services: [{name: svc-a}]}\n"
        "attestation: {type: symmetricKey}\ninitialState: {profileName: thermostat}\n"
    )
    added = run(url, "enrollment", "add", str(tmp_path / "enr.yaml"))
    assert added.returncode == 0, added.stderr
    assert "primaryKey: " in added.stdout  # generated keys are shown the one time they can be
    assert "badge-rt" in run(url, "enrollment", "list").stdout
    got = json.loads(run(url, "enrollment", "get", "badge-rt", "--json").stdout)
    assert got["enrollment"]["allocation"]["policy"] == "static"
    assert "primaryKey" not in got["enrollment"]["attestation"]
    keys = json.loads(run(url, "enrollment", "get", "badge-rt", "--show-keys", "--json").stdout)
    assert keys["enrollment"]["attestation"]["primaryKey"] in added.stdout
    assert run(url, "enrollment", "delete", "badge-rt").returncode == 0
    assert api(base, "/enrollment/name/badge-rt")["statusCode"] == 404


# -- errors ----------------------------------------------------------------------------------


def test_errors_print_the_service_message_and_exit_non_zero(
    base: ServeProcess, tmp_path: Path
) -> None:
    url = base.url
    refused = run(url, "device", "add", "-", stdin=json.dumps(device("err-1", "no-such-svc")))
    assert refused.returncode == 1
    assert "device service 'no-such-svc'" in refused.stdout  # the 207 item's message
    missing = run(url, "profile", "get", "no-such-profile")
    assert missing.returncode == 1
    assert "no-such-profile" in missing.stderr

    down = run_proc("http://127.0.0.1:9", "status")  # nothing listens on the discard port
    assert down.returncode == 3
    assert "is `edgemeta serve` running? --url/EDGEMETA_URL" in down.stderr
    (tmp_path / "one.csv").write_text("name,serviceName\nx,y\n")
    lost = run("http://127.0.0.1:9", "import", str(tmp_path / "one.csv"))
    assert lost.returncode == 3
    assert "run the same import again" in lost.stderr
    flag = run("http://127.0.0.1:9", "device", "list", "--url", url)  # --url beats the env
    assert flag.returncode == 0, flag.stderr

    both = run(url, "device", "list", "--api-key", "k", "--token", "t")
    assert both.returncode == 2
    assert "not both" in both.stderr
    (tmp_path / "broken.json").write_text("{not json")
    bad_file = run(url, "device", "add", str(tmp_path / "broken.json"))
    assert bad_file.returncode == 2
    assert "not valid JSON" in bad_file.stderr
    assert run(url, "device", "add", str(tmp_path / "absent.json")).returncode == 2
    combined = run(url, "device", "list", "--service", "a", "--profile", "b")
    assert combined.returncode == 2


# -- import ----------------------------------------------------------------------------------


def test_import_10000_devices_with_bad_rows_in_the_middle(
    base: ServeProcess, tmp_path: Path
) -> None:
    names = [f"bulk-{i:05d}" for i in range(10_000)]
    bad = {
        "bulk-05000": {"protocols": "{not json"},  # refused by the CLI: the cell is not JSON
        "bulk-05001": {"profileName": "no-such-profile"},  # refused by the service, per item
        "bulk-07500": {"adminState": "SIDEWAYS"},  # refuses its whole batch: split to find it
    }
    write_csv(tmp_path / "devices.csv", names, bad)
    report = tmp_path / "report.json"
    began = time.monotonic()
    r = run_proc(base.url, "import", str(tmp_path / "devices.csv"), "--report", str(report))
    took = time.monotonic() - began
    assert r.returncode == 1, r.stderr  # some were refused
    assert took < 60, f"10,000 devices took {took:.1f} s"
    outcome = json.loads(report.read_text())
    assert outcome["created"]["device"] == 9_997
    assert outcome["refused"]["device"] == 3
    assert outcome["skipped"]["device"] == 0
    reasons = {o["name"]: o for o in outcome["refusedItems"]}
    assert set(reasons) == set(bad)
    assert "protocols: not valid JSON" in reasons["bulk-05000"]["message"]
    assert reasons["bulk-05000"]["source"] == "devices.csv:5002" or reasons["bulk-05000"][
        "source"
    ].endswith("devices.csv:5002")
    assert "no-such-profile" in reasons["bulk-05001"]["message"]
    assert "adminState" in reasons["bulk-07500"]["message"]
    assert "bulk-05001" in r.stdout  # the first refusals are shown, with their reasons
    assert "9997" in r.stdout

    listed = api(base, "/device/all", labels="bulk", limit=1)
    assert listed["totalCount"] == 9_997
    d = api(base, "/device/name/bulk-04999")["device"]
    assert d["labels"] == ["bulk", "floor-2"]
    assert d["properties"] == {"n": 4999}
    assert api(base, "/device/name/bulk-07501")["statusCode"] == 200  # its batch-mates exist


def test_interrupted_import_resumes_without_duplicates(base: ServeProcess, tmp_path: Path) -> None:
    total = 6_000
    names = [f"resume-{i:05d}" for i in range(total)]
    write_csv(tmp_path / "resume.csv", names, labels="resume")
    first = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgemeta",
            "import",
            str(tmp_path / "resume.csv"),
            "--batch",
            "100",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=cli_env(base.url),
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and first.poll() is None:
            if api(base, "/device/name/resume-00300")["statusCode"] == 200:
                break
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)  # an interruption nothing can clean up after
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    so_far = api(base, "/device/all", labels="resume", limit=1)["totalCount"]
    assert 0 < so_far < total, f"the first import was not interrupted part-way ({so_far})"

    report = tmp_path / "resume.json"
    r = run(base.url, "import", str(tmp_path / "resume.csv"), "--json", "--report", str(report))
    assert r.returncode == 0, r.stderr
    outcome = json.loads(r.stdout)
    assert outcome == json.loads(report.read_text())
    assert outcome["skipped"]["device"] == so_far  # what the first run created is skipped
    assert outcome["created"]["device"] == total - so_far  # and only the rest is created
    assert outcome["refused"]["device"] == 0
    assert api(base, "/device/all", labels="resume", limit=1)["totalCount"] == total


def test_import_orders_services_profiles_devices_from_one_file(
    served: ServeProcess, tmp_path: Path
) -> None:
    bundle = {
        # devices first in the file: the import still sends services, then profiles, first
        "devices": [device("bundle-d1", "bundle-svc", profileName="bundle-profile")],
        "profiles": [
            {
                "name": "bundle-profile",
                "deviceResources": [
                    {"name": "x", "properties": {"valueType": "Int32", "readWrite": "R"}}
                ],
            }
        ],
        "services": [
            {"name": "bundle-svc", "baseAddress": "http://127.0.0.1:1", "adminState": "UNLOCKED"}
        ],
    }
    (tmp_path / "bundle.json").write_text(json.dumps(bundle))
    (tmp_path / "bundle-yaml.yaml").write_text(PROFILE_YAML.replace("thermostat", "bundle-yaml"))
    files = [str(tmp_path / "bundle.json"), str(tmp_path / "bundle-yaml.yaml")]
    r = run(served.url, "import", *files, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["created"] == {"service": 1, "profile": 2, "device": 1}
    assert api(served, "/deviceprofile/name/bundle-yaml")["profile"]["model"] == "T-1000"
    again = json.loads(run(served.url, "import", *files, "--json").stdout)
    assert again["skipped"] == {"service": 1, "profile": 2, "device": 1}
    assert again["created"] == {"service": 0, "profile": 0, "device": 0}


# -- move, events, status ---------------------------------------------------------------------


def test_move_dry_run_then_a_real_move(base: ServeProcess) -> None:
    url = base.url
    assert run(url, "device", "add", "-", stdin=json.dumps(device("mover"))).returncode == 0
    dry = run(url, "move", "mover", "svc-b", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "every check passed" in dry.stdout
    assert api(base, "/device/name/mover")["device"]["serviceName"] == "svc-a"
    nowhere = run(url, "move", "mover", "no-such-svc", "--dry-run")
    assert nowhere.returncode == 1
    assert "device service 'no-such-svc' does not exist" in nowhere.stderr

    moved = run(url, "move", "mover", "svc-b", "--policy", "reset")
    assert moved.returncode == 0, moved.stderr
    assert "assigned" in moved.stdout
    for step in ("request", "accept", "commit", "release", "assign"):
        assert step in moved.stdout
    assert api(base, "/device/name/mover")["device"]["serviceName"] == "svc-b"
    history = api(base, "/device/name/mover/moves")["moves"]
    assert [(m["toService"], m["statePolicy"], m["state"]) for m in history] == [
        ("svc-b", "reset", "assigned")
    ]

    again = run(url, "move", "mover", "svc-b")
    assert again.returncode == 1
    assert "already owned by 'svc-b'" in again.stderr
    back = json.loads(run(url, "move", "mover", "svc-a", "--json").stdout)
    assert back["move"]["state"] == "assigned"
    assert back["move"]["fromService"] == "svc-b"


def test_events_prints_one_line_per_event_and_json_envelopes(base: ServeProcess) -> None:
    url = base.url
    topic = "edgex/system-events/core-metadata/deviceservice/#"
    text = run_proc(url, "events", "--since", "0", "--count", "2", "--topic", topic)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.strip().splitlines()
    assert len(lines) == 2
    assert "edgex/system-events/core-metadata/deviceservice/add/svc-a" in lines[0]
    assert lines[0].split()[2:] == ["add", "svc-a"]
    raw = run(url, "events", "--since", "0", "--count", "1", "--json", "--topic", topic)
    envelope = json.loads(raw.stdout)
    assert envelope["payload"]["type"] == "deviceservice"
    assert envelope["payload"]["action"] == "add"


def test_events_follows_live_and_stops_with_exit_0_on_ctrl_c(base: ServeProcess) -> None:
    def add(name: str) -> None:
        body = [{"apiVersion": "v3", "device": device(name)}]
        assert httpx.post(base.url + "/device", json=body, timeout=10).status_code == 207

    add("ctrl-c-old")  # replayed (--since 0): seeing it means the stream is open
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgemeta",
            "events",
            "--since",
            "0",
            "--topic",
            "edgex/system-events/core-metadata/device/#",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(base.url),
    )
    watchdog = threading.Timer(60, proc.kill)  # a line that never comes fails, not hangs
    watchdog.start()
    try:
        out, errs = proc.stdout, proc.stderr
        assert out is not None
        assert errs is not None

        def until(name: str) -> str:
            for line in out:
                if line.rstrip().endswith(f"  {name}"):
                    return line
            raise AssertionError(f"the stream ended before {name}: {errs.read()}")

        assert "/device/add/svc-a/thermostat  add  ctrl-c-old" in until("ctrl-c-old")
        add("ctrl-c-live")  # added while the command follows the stream
        assert "add  ctrl-c-live" in until("ctrl-c-live")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err


def test_status_reports_health_version_counts(base: ServeProcess) -> None:
    r = run(base.url, "status", "--json")
    assert r.returncode == 0, r.stderr
    status = json.loads(r.stdout)
    assert status["health"]["statusCode"] == 200
    assert status["edgemetaVersion"] == __version__
    assert status["counts"]["services"] == api(base, "/deviceservice/all", limit=1)["totalCount"]
    assert status["counts"]["devices"] == api(base, "/device/all", limit=1)["totalCount"]
    assert status["movesInFlight"] == []
    assert status["outbox"]["backlog"] >= 0 and status["outbox"]["oldestAgeSeconds"] >= 0
    table = run(base.url, "status")
    assert "moves in flight" in table.stdout
    assert "events not yet published" in table.stdout


# -- authentication --------------------------------------------------------------------------


def test_auth_on_with_an_api_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"EDGEMETA_DATA_DIR": str(data)}
    key = subprocess.run(
        [sys.executable, "-m", "edgemeta", "apikey", "create", "--role", "admin"],
        capture_output=True,
        text=True,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("EDGEMETA_")}, **env},
        timeout=60,
    )
    assert key.returncode == 0, key.stderr
    secret = key.stdout.strip()
    assert secret.startswith("emk_")
    proc = start(tmp_path, env={**env, "EDGEMETA_AUTH": "on"})
    try:
        proc.wait_ready()
        url = proc.url
        refused = run(url, "service", "list")
        assert refused.returncode == 1
        assert "401" in refused.stderr
        with_key = run(url, "service", "list", "--api-key", secret, "--json")
        assert with_key.returncode == 0, with_key.stderr
        assert json.loads(with_key.stdout)["totalCount"] == 0
        from_env = run(
            url,
            "service",
            "add",
            "-",
            EDGEMETA_API_KEY=secret,
            stdin=json.dumps(
                {"name": "auth-svc", "baseAddress": "http://127.0.0.1:1", "adminState": "UNLOCKED"}
            ),
        )
        assert from_env.returncode == 0, from_env.stdout + from_env.stderr
        as_bearer = run(url, "service", "get", "auth-svc", "--token", secret)
        assert as_bearer.returncode == 0, as_bearer.stderr
        status = json.loads(run(url, "status", "--json", "--api-key", secret).stdout)
        assert status["counts"]["services"] == 1
        anonymous = json.loads(run(url, "status", "--json").stdout)  # health is open
        assert anonymous["health"]["statusCode"] == 200
        assert "refused" in anonymous
    finally:
        proc.stop()


# -- the README's CLI examples ---------------------------------------------------------------


@pytest.mark.slow
def test_the_readme_cli_examples_work(tmp_path: Path) -> None:
    """The tour's ``edgemeta`` blocks, run in order with its curl blocks (which
    tests/docs runs on their own), each command exiting 0."""
    readme = (ROOT / "README.md").read_text("utf-8")
    curl_blocks = {b.script: b for b in blocks(ROOT / "README.md")}
    data_port = free_port()
    proc = start(tmp_path, env={"EDGEMETA_DATA_PORT": str(data_port)})
    ports = {"59881": str(proc.port), "59880": str(data_port)}
    try:
        proc.wait_ready()
        ran_cli = 0
        for m in FENCE.finditer(readme):
            script = m.group(2)
            if script in curl_blocks:
                _run(curl_blocks[script], tmp_path, ports)
            elif ".venv/bin/edgemeta " in script and "apikey" not in script:
                cli = script.replace(".venv/bin/edgemeta ", f"{sys.executable} -m edgemeta ")
                lines = [ln for ln in cli.splitlines() if ln.strip()]
                done = subprocess.run(
                    ["bash", "-e", "-c", "\n".join(lines)],
                    cwd=tmp_path,
                    capture_output=True,
                    text=True,
                    # the service's own data directory: `edgemeta backup` copies its database
                    env=cli_env(proc.url, EDGEMETA_DATA_DIR=str(tmp_path / "data")),
                    timeout=120,
                )
                assert done.returncode == 0, (script, done.stdout, done.stderr)
                ran_cli += 1
        assert ran_cli >= 2
        assert api(proc, "/device/name/hall-1")["device"]["serviceName"] == "device-modbus"
    finally:
        proc.stop()


def test_a_move_that_rolls_back_exits_1_and_status_shows_it_in_flight(
    base: ServeProcess,
) -> None:
    # An old owner that promises to confirm releases and never does: the move waits
    # EDGEMETA_MOVE_ACK_TIMEOUT (5 s), then rolls back.
    silent = {
        "name": "svc-silent",
        "baseAddress": "http://127.0.0.1:1",
        "adminState": "UNLOCKED",
        "properties": {"edgemeta": {"acksRelease": True}},
    }
    assert run(base.url, "service", "add", "-", stdin=json.dumps(silent)).returncode == 0
    assert (
        run(base.url, "device", "add", "-", stdin=json.dumps(device("stuck", "svc-silent")))
    ).returncode == 0
    mover = subprocess.Popen(
        [sys.executable, "-m", "edgemeta", "move", "stuck", "svc-a"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(base.url),
    )
    try:
        in_flight: list[dict[str, Any]] = []
        deadline = time.monotonic() + 20
        while not in_flight and time.monotonic() < deadline and mover.poll() is None:
            status = run(base.url, "status", "--json")
            in_flight = json.loads(status.stdout)["movesInFlight"]
            time.sleep(0.1)
        out, err = mover.communicate(timeout=60)
    finally:
        if mover.poll() is None:
            mover.kill()
    assert [(m["deviceName"], m["state"]) for m in in_flight] == [("stuck", "releasing")]
    assert mover.returncode == 1, out + err
    assert "rolledBack" in out
    assert "release" in out
    assert api(base, "/device/name/stuck")["device"]["serviceName"] == "svc-silent"


# -- HTTPS ------------------------------------------------------------------------------------


class _EdgeXish(BaseHTTPRequestHandler):
    """Answers like edgemeta's /ping and /device/all, naming the client certificate's CN."""

    def do_GET(self) -> None:
        peer = self.connection.getpeercert()
        cn = dict(x[0] for x in peer["subject"])["commonName"] if peer else ""
        body = {
            "apiVersion": "v3",
            "statusCode": 200,
            "totalCount": 1,
            "devices": [{"name": f"seen-by-{cn}"}],
        }
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


def test_https_with_a_private_ca_and_a_client_certificate(tmp_path: Path) -> None:
    """The CLI's TLS settings against an HTTPS server that requires client certificates
    (mutual TLS, as ``EDGEMETA_TLS_CLIENT_CA_FILE`` makes edgemeta do): a stand-in server,
    since what is checked is the client's side of the handshake."""
    ca = Authority(tmp_path / "pki", "cli")
    server_cert = ca.issue("server", server=True)
    operator = ca.issue("operator", server=False)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca.cert_file))
    ctx.load_cert_chain(server_cert.cert, server_cert.key)
    ctx.verify_mode = ssl.CERT_REQUIRED

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # refused handshakes are the point of some of the calls below

    httpd = Server(("127.0.0.1", 0), _EdgeXish)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    url = f"https://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        tls = {
            "EDGEMETA_CA_FILE": str(ca.cert_file),
            "EDGEMETA_CLIENT_CERT_FILE": str(operator.cert),
            "EDGEMETA_CLIENT_KEY_FILE": str(operator.key),
        }
        ok = run(url, "device", "list", "--json", **tls)
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout)["devices"] == [{"name": "seen-by-operator"}]

        untrusted = run(url, "device", "list")  # the system's CAs do not know this one
        assert untrusted.returncode == 3
        assert "EDGEMETA_CA_FILE" in untrusted.stderr
        no_cert = run(url, "device", "list", EDGEMETA_CA_FILE=str(ca.cert_file))
        assert no_cert.returncode == 3
        assert "EDGEMETA_CLIENT_CERT_FILE" in no_cert.stderr
        half = run(url, "device", "list", **{**tls, "EDGEMETA_CLIENT_KEY_FILE": ""})
        assert half.returncode == 2
        assert "go together" in half.stderr
        missing = run(url, "device", "list", EDGEMETA_CA_FILE=str(tmp_path / "absent.pem"))
        assert missing.returncode == 2
        assert "EDGEMETA_CA_FILE" in missing.stderr
    finally:
        httpd.shutdown()
        httpd.server_close()
