"""The virtual device service example starts in one command, as examples/README.md says,
against a real ``edgemeta serve`` on Mosquitto: it registers itself, its profile and device,
and answers a get and a refused set on its REST port."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.procs import free_port, start
from tests.support import servers

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


def test_the_example_starts_in_one_command_and_answers(tmp_path: Path) -> None:
    servers.require(servers.MQTT_URL, "Mosquitto")
    prefix = servers.unique("vds")
    env = {"EDGEMETA_DATA_CLIENT_ID": f"{prefix}-data"}
    edgemeta = start(tmp_path, "--bus-url", servers.MQTT_URL, "--bus-prefix", prefix, env=env)
    ds: subprocess.Popen[bytes] | None = None
    try:
        edgemeta.wait_ready()
        port = free_port()
        log = tmp_path / "ds.log"
        with log.open("wb") as out:
            ds = subprocess.Popen(
                [sys.executable, "-m", "examples.virtual_device_service", "--url",
                 edgemeta.url, "--bus-url", servers.MQTT_URL, "--prefix", prefix,
                 "--http-port", str(port)],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        base = f"http://127.0.0.1:{port}/api/v3/device/name/virtual-thermostat"
        deadline = time.monotonic() + 20
        got = None
        while time.monotonic() < deadline and ds.poll() is None:
            try:
                got = httpx.get(f"{base}/values", timeout=2)
                if got.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        assert got is not None and got.status_code == 200, log.read_text()
        names = sorted(r["resourceName"] for r in got.json()["event"]["readings"])
        assert names == ["counter", "random", "setpoint"]
        bad = httpx.put(f"{base}/setpoint", json={"setpoint": "31"}, timeout=5)
        assert bad.status_code == 400 and "above its maximum 30" in bad.json()["message"]
        service = httpx.get(f"{edgemeta.url}/deviceservice/name/device-virtual", timeout=5)
        assert service.json()["service"]["baseAddress"] == f"http://127.0.0.1:{port}"
    finally:
        if ds is not None and ds.poll() is None:
            ds.send_signal(signal.SIGTERM)
            ds.wait(15)
        edgemeta.stop()
    assert ds.returncode == 0, (tmp_path / "ds.log").read_text()
