"""Versioned schema migrations, one numbered SQL file per step and per database."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of the schema: ``NNNN_name.sql``."""

    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        """The step split into statements (our files keep ``;`` at line ends only)."""
        out: list[str] = []
        for chunk in self.sql.split(";\n"):
            lines = [ln for ln in chunk.splitlines() if not ln.strip().startswith("--")]
            stmt = "\n".join(lines).strip().rstrip(";")
            if stmt:
                out.append(stmt)
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
