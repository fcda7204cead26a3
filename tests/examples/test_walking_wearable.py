"""The example in examples/ runs, in a short form, exactly as the README says (so it cannot
rot): a wearable walks between two edgemeta device services, one serving it at each step."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "walking_wearable.py"


def test_walking_wearable_runs_and_one_service_serves_at_each_step() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--steps", "3", "--pause", "0.05"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    moves = re.findall(r"^step \d+: move \w+ (\S+) -> (\S+): (\w+) \(200\)", out, re.M)
    assert moves == [
        ("ward-a", "ward-b", "assigned"),
        ("ward-b", "ward-a", "assigned"),
        ("ward-a", "ward-b", "assigned"),
    ], out
    assert out.count("(exactly one)") == 3, out
    assert "served twice 0 times, steps not settled on one ward 0" in out
    assert "history: 3 moves of badge-7 recorded" in out
