"""The ``mosquitto_pub``/``mosquitto_sub`` examples of docs/commands.md ("Commands from the
north") run as written against a live ``edgemeta serve`` with the north bridge and the virtual
device service, on a real Mosquitto: each block's output must be the answer its trailing
``# ...`` lines show. (The topics' ``edgex/`` root is rewritten to the test's own, so that
tests can share the broker.)"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.procs import start, virtual_device_service
from tests.support import servers

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "commands.md"
_FENCE = re.compile(r"^```sh\n(.*?)^```", re.M | re.S)

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


def north_blocks() -> list[tuple[str, list[str]]]:
    """The section's runnable blocks and the output each shows (its trailing ``#`` lines)."""
    text = DOC.read_text("utf-8")
    section = text[text.index("## Commands from the north") :]
    section = section[: section.index("\n### ")]
    found = []
    for m in _FENCE.finditer(section):
        script = m.group(1)
        if "mosquitto_pub" not in script:
            continue
        lines = script.rstrip("\n").splitlines()
        expected: list[str] = []
        while lines and lines[-1].startswith("# "):
            expected.insert(0, lines.pop().removeprefix("# "))
        found.append((script, expected))
    return found


def test_the_section_has_its_examples() -> None:
    blocks = north_blocks()
    assert len(blocks) == 3 and all(expected for _, expected in blocks)


def test_the_mosquitto_examples_work(tmp_path: Path) -> None:
    servers.require(servers.MQTT_URL, "Mosquitto")
    for tool in ("mosquitto_pub", "mosquitto_sub", "jq"):
        if shutil.which(tool) is None:
            if os.environ.get("CI"):
                pytest.fail(f"{tool} is not installed; CI needs it")
            pytest.skip(f"{tool} is not installed")
    if servers.MQTT_URL != "mqtt://127.0.0.1:1883":
        pytest.skip("the doc's examples talk to 127.0.0.1:1883")
    prefix = servers.unique("nd")
    root = servers.unique("northdoc")
    env = {
        "EDGEMETA_DATA_CLIENT_ID": f"{prefix}-data",
        "EDGEMETA_NORTH_MQTT_URL": servers.MQTT_URL,
        "EDGEMETA_NORTH_QUERY_REQUEST_TOPIC": f"{root}/commandquery/request/#",
        "EDGEMETA_NORTH_QUERY_RESPONSE_TOPIC": f"{root}/commandquery/response",
        "EDGEMETA_NORTH_COMMAND_REQUEST_TOPIC": f"{root}/command/request/#",
        "EDGEMETA_NORTH_COMMAND_RESPONSE_TOPIC_PREFIX": f"{root}/command/response",
    }
    edgemeta = start(tmp_path, "--bus-url", servers.MQTT_URL, "--bus-prefix", prefix, env=env)
    try:
        edgemeta.wait_ready()
        with virtual_device_service(edgemeta.url, servers.MQTT_URL, prefix, tmp_path / "ds.log"):
            for script, expected in north_blocks():
                done = subprocess.run(
                    ["bash", "-e", "-c", script.replace("edgex/", f"{root}/")],
                    cwd=tmp_path,
                    capture_output=True,
                    text=True,
                    timeout=30,
                )
                assert done.returncode == 0, (script, done.stderr)
                assert done.stdout.splitlines() == expected, (script, done.stdout, done.stderr)
    finally:
        edgemeta.stop()
