"""The virtual device service example starts in one command, as examples/README.md says,
against a real ``edgemeta serve`` on Mosquitto: it registers itself, its profile and device,
and answers a get and a refused set on its REST port."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.procs import start, virtual_device_service
from tests.support import servers

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


def test_the_example_starts_in_one_command_and_answers(tmp_path: Path) -> None:
    servers.require(servers.MQTT_URL, "Mosquitto")
    prefix = servers.unique("vds")
    env = {"EDGEMETA_DATA_CLIENT_ID": f"{prefix}-data"}
    edgemeta = start(tmp_path, "--bus-url", servers.MQTT_URL, "--bus-prefix", prefix, env=env)
    try:
        edgemeta.wait_ready()
        with virtual_device_service(
            edgemeta.url, servers.MQTT_URL, prefix, tmp_path / "ds.log"
        ) as ds:
            base = f"http://127.0.0.1:{ds.port}/api/v3/device/name/virtual-thermostat"
            got = httpx.get(f"{base}/values", timeout=5)
            assert got.status_code == 200, ds.log.read_text()
            names = sorted(r["resourceName"] for r in got.json()["event"]["readings"])
            assert names == ["counter", "random", "setpoint"]
            bad = httpx.put(f"{base}/setpoint", json={"setpoint": "31"}, timeout=5)
            assert bad.status_code == 400 and "above its maximum 30" in bad.json()["message"]
            service = httpx.get(f"{edgemeta.url}/deviceservice/name/device-virtual", timeout=5)
            assert service.json()["service"]["baseAddress"] == f"http://127.0.0.1:{ds.port}"
    finally:
        edgemeta.stop()
    assert ds.proc.returncode == 0, ds.log.read_text()  # a clean stop on SIGTERM
