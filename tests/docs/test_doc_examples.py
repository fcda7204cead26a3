"""The ``curl`` examples of README.md and docs/*.md, run against a live ``edgemeta serve``.

Every ```` ```sh ```` block holding a ``curl`` is run with bash, in order, per file, on a fresh
data directory (the ports 59881/59880/59890 the docs use are rewritten to free ones). Each curl
must exit 0 and answer no 5xx; where the doc shows the answer (a ``# {..."statusCode":N...}``
comment after the command, or a ``# N`` at the end of its line), the status must match.
"""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.procs import free_port, start

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# Blocks the test cannot run, by a string they hold, with the reason.
SKIP = {
    "curl -N": "an SSE stream: it never ends (tests/e2e/test_header_case.py and the "
    "system-event tests cover the stream)",
    "--cert dev.pem": "needs edgemeta served over mutual TLS (tests/security/test_x509_mtls.py "
    "runs that registration through a real handshake)",
}

# Docs that go on from another doc's walkthrough: they run after it, on the same service.
# ("Getting unstuck" deletes the README's device; the dry run asks to move it back.)
AFTER = {"profile-rules.md": "README.md", "moves.md": "README.md"}

_FENCE = re.compile(r"^( *)```sh\n(.*?)^\1```", re.M | re.S)
_STATUS = re.compile(r'"statusCode":\s*(\d{3})')
_INLINE_STATUS = re.compile(r"#\s*(\d{3})\s*$")


@dataclass
class Call:
    """One curl of a block and what the doc says it answers."""

    line: str
    status: int | None = None  # the envelope's statusCode, or the HTTP status if inline
    inline: bool = False


@dataclass
class Block:
    """One runnable block."""

    doc: str
    script: str
    calls: list[Call] = field(default_factory=list)


def blocks(doc: Path) -> list[Block]:
    """The runnable curl blocks of ``doc``, with the answers the doc expects."""
    found = []
    for m in _FENCE.finditer(doc.read_text("utf-8")):
        script = textwrap.dedent(m.group(2))
        if "curl " not in script or any(s in script for s in SKIP):
            continue
        block = Block(doc.name, script)
        for line in script.splitlines():
            stripped = line.strip()
            if stripped.startswith("curl "):
                inline = _INLINE_STATUS.search(stripped)
                block.calls.append(
                    Call(stripped, int(inline.group(1)) if inline else None, bool(inline))
                )
            elif stripped.startswith("#") and block.calls and block.calls[-1].status is None:
                expected = _STATUS.search(stripped)
                if expected:
                    block.calls[-1].status = int(expected.group(1))
        found.append(block)
    return found


# A curl that records each answer (body, HTTP status, exit code) in $OUT/<n>.
_PRELUDE = """
n=0
curl() {
  n=$((n+1))
  command curl -sS -o "$OUT/$n.body" -w '%{http_code}' "$@" > "$OUT/$n.code"
  echo $? > "$OUT/$n.rc"
}
"""


def _run(block: Block, cwd: Path, ports: dict[str, str]) -> None:
    script = block.script
    for doc_port, port in ports.items():
        script = script.replace(f"127.0.0.1:{doc_port}", f"127.0.0.1:{port}")
    out = cwd / "answers"
    if out.exists():
        for old in out.iterdir():
            old.unlink()
    out.mkdir(exist_ok=True)
    done = subprocess.run(
        ["bash", "-c", _PRELUDE + script],
        cwd=cwd,
        env={"OUT": str(out), "PATH": "/usr/bin:/bin:/usr/local/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, (block.doc, script, done.stderr)
    assert len(list(out.glob("*.rc"))) == len(block.calls), (block.doc, script)
    for i, call in enumerate(block.calls, 1):
        rc = int((out / f"{i}.rc").read_text())
        code = int((out / f"{i}.code").read_text())
        body = (out / f"{i}.body").read_text()
        where = f"{block.doc}: {call.line} -> {code} {body}"
        assert rc == 0, where
        assert code < 500, where
        if call.status is None:
            continue
        if call.inline:
            assert code == call.status, where
        else:
            answer = json.loads(body)
            first = answer[0] if isinstance(answer, list) else answer
            assert first["statusCode"] == call.status, where


def _runnable() -> list[Path]:
    return [d for d in DOCS if blocks(d)]


@pytest.mark.parametrize("doc", _runnable(), ids=lambda d: d.name)
def test_the_curl_examples_of_a_doc_work(doc: Path, tmp_path: Path) -> None:
    data_port, command_port = free_port(), free_port()
    p = start(
        tmp_path,
        env={"EDGEMETA_DATA_PORT": str(data_port), "EDGEMETA_COMMAND_PORT": str(command_port)},
    )
    try:
        p.wait_ready()
        p.wait_keeper_ready()
        ports = {
            "59881": str(p.port),
            "59880": str(data_port),
            "59890": str(p.keeper_port),
            "59882": str(command_port),
        }
        chain = [d for d in DOCS if AFTER.get(doc.name) == d.name] + [doc]
        for part in chain:
            for block in blocks(part):
                _run(block, tmp_path, ports)
    finally:
        p.stop()


def test_the_extraction_finds_the_examples() -> None:
    # A change of fence style must not silently leave a doc untested.
    with_curl = {d.name for d in _runnable()}
    assert {"README.md", "moves.md", "profile-rules.md", "provisioning.md"} <= with_curl
    assert set(AFTER) | set(AFTER.values()) <= with_curl
    readme = blocks(ROOT / "README.md")
    assert sum(len(b.calls) for b in readme) >= 8
    assert sum(c.status is not None for b in readme for c in b.calls) >= 5
