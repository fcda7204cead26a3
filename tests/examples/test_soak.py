"""The move soak (bench/soak.py) in its short form: devices walk among device services that
are killed and restarted, and no device is ever seen with zero or two owners; with commands
through core-command, none reaches a service that released its device and none is lost."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_short_soak_sees_one_owner_always() -> None:
    command = [sys.executable, "-m", "bench.soak", "--devices", "50", "--services", "3"]
    command += ["--seconds", "15", "--chaos-every", "1.5", "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr[-3000:]
    moves = int(re.search(r"moves done: (\d+)", out).group(1))  # type: ignore[union-attr]
    killed = int(re.search(r"services killed (\d+)", out).group(1))  # type: ignore[union-attr]
    assert moves > 100 and killed > 0, out
    assert "zero owners: store 0, services 0" in out, out
    assert "two owners:  store 0, services 0" in out, out


@pytest.mark.slow
def test_short_soak_with_a_hostile_participant_believes_no_forgery() -> None:
    command = [sys.executable, "-m", "bench.soak", "--devices", "50", "--services", "3"]
    command += ["--seconds", "10", "--chaos-every", "1.5", "--quiet", "--hostile"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr[-3000:]
    found = re.search(r"forgeries sent (\d+), accepted (\d+)", out)
    assert found is not None, out
    sent, accepted = int(found.group(1)), int(found.group(2))
    assert sent > 100 and accepted == 0, out
    assert int(re.search(r"moves done: (\d+)", out).group(1)) > 50, out  # type: ignore[union-attr]
    assert "zero owners: store 0, services 0" in out, out
    assert "two owners:  store 0, services 0" in out, out


@pytest.mark.slow
def test_short_command_soak_loses_no_command_and_no_driver_touches_a_non_owner() -> None:
    command = [sys.executable, "-m", "bench.soak", "--devices", "30", "--services", "3"]
    command += ["--seconds", "8", "--chaos-every", "1", "--down", "1", "--quiet", "--commands"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)
    out = done.stdout
    found = re.search(r"by final status \{([^}]*)\}; lost \(no final status\) (\d+)", out)
    assert found is not None, out + done.stderr[-3000:]
    statuses = {int(k): int(v) for k, v in re.findall(r"(\d+): (\d+)", found.group(1))}
    assert statuses.get(200, 0) > 100 and int(found.group(2)) == 0, out
    assert "driver calls on a device not served 0 " in out, out
    assert "zero owners: store 0, services 0" in out, out
    assert "two owners:  store 0, services 0" in out, out
    killed = int(re.search(r"services killed (\d+)", out).group(1))  # type: ignore[union-attr]
    assert killed > 0, out
    non_owner = re.search(
        r"delivered to a non-owner \(by the store's owner history at receipt\) (\d+)", out
    )
    assert non_owner is not None, out
    # core-command fences commands against a move's commit A (command holds), so no request
    # reaches a service after it was told to release the device
    assert int(non_owner.group(1)) == 0, out
    assert done.returncode == 0, out + done.stderr[-3000:]
