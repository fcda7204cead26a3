"""Output of the admin commands: rich tables for people, the service's JSON for machines.

Tables and progress go to a rich console; ``--json`` writes the service's documents to
stdout unchanged (one JSON document per command), so scripts can pipe them to ``jq``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

console = Console(highlight=False)
# Errors are one line each, whatever the terminal width (scripts read them).
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

Column = tuple[str, Callable[[dict[str, Any]], Any]]


def print_json(data: Any) -> None:
    """One JSON document on stdout (indented, keys as the service sent them)."""
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.flush()


def cell(value: Any) -> str:
    """A table cell: lists joined by commas, dicts as compact JSON, None as '-'."""
    if value is None or value == "" or value == [] or value == {}:
        return "-"
    if isinstance(value, list | tuple):
        return ",".join(cell(v) for v in value)
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[Column], title: str = "") -> Table:
    """A rich table of ``rows`` with the given (header, getter) columns."""
    t = Table(title=title or None, title_justify="left", header_style="bold")
    for header, _ in columns:
        t.add_column(header, overflow="fold")
    for row in rows:
        # Text, not str: a name or message holding [brackets] is data, not rich markup.
        t.add_row(*(Text(cell(get(row))) for _, get in columns))
    return t


def record(doc: dict[str, Any], title: str = "") -> Table:
    """One record as a two-column table (field, value), nested values as JSON."""
    t = Table(title=title or None, title_justify="left", show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value", overflow="fold")
    for key, value in doc.items():
        t.add_row(key, Text(ms(value) if key in ("created", "modified") else cell(value)))
    return t


def ms(value: Any) -> str:
    """A millisecond timestamp as UTC ISO time ('-' when absent)."""
    if not isinstance(value, int | float) or value <= 0:
        return "-"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(value / 1000))
