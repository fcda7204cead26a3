"""Versioned schema migrations, one numbered SQL file per step and per database."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of the schema: ``NNNN_name.sql``."""

    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        """The step split into statements (our files keep ``;`` at line ends only).

        A line ending in ``;`` ends a statement unless it is inside a trigger's
        ``BEGIN ... END`` (``sqlite3.complete_statement`` tells), so a trigger stays whole.
        """
        out: list[str] = []
        lines: list[str] = []
        for line in self.sql.splitlines():
            if line.strip().startswith("--"):
                continue
            lines.append(line)
            text = "\n".join(lines).strip()
            if text.endswith(";") and sqlite3.complete_statement(text):
                out.append(text.rstrip(";").strip())
                lines = []
        rest = "\n".join(lines).strip().rstrip(";")
        if rest:
            out.append(rest)
        return out


def migrations(dialect: str) -> list[Migration]:
    """The steps for ``dialect`` ("sqlite" or "postgres"), in order."""
    folder = resources.files(__package__).joinpath(dialect)
    steps: list[Migration] = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        number, _, rest = entry.name.partition("_")
        steps.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text()))
    steps.sort(key=lambda m: m.version)
    versions = [m.version for m in steps]
    if versions != list(range(1, len(steps) + 1)):
        raise RuntimeError(f"{dialect} migrations are not numbered 1..n: {versions}")
    return steps
