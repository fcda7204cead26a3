"""Help without a type placeholder on flags.

typer's rich help prints every option's type, flags included (``--help <bool>``,
``--core-data --no-core-data <bool>``), although a flag takes no value; its plain help and
click's never do. ``install()`` makes the rich help agree: a flag shows no type. Options that
take a value keep theirs (``--port <int>``).
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperOption

_MARK = "_edgemeta_flag_types_hidden"


def install() -> None:
    """Hide the type of flags in typer's rich help (idempotent)."""
    original: Any = TyperOption.display_type_rich
    if getattr(original, _MARK, False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        if self.is_flag:
            return None
        result: str | None = original(self, ctx)
        return result

    setattr(display_type_rich, _MARK, True)
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
