"""Reading device profiles from YAML the way EdgeX does.

Go's YAML decoder fills a string field from any scalar: ``model: 1234`` is the string
``"1234"`` and ``defaultValue: 0`` is ``"0"``. Real profile files rely on that, so for the
fields a profile declares as text, the scalar's own text is kept (``1.50`` stays ``"1.50"``);
everywhere else (``minimum``, ``isHidden``, free-form ``attributes``...) the YAML value is used.
The file is parsed twice, once with types resolved and once as plain text, and the two are
merged along the profile's shape.
"""

from __future__ import annotations

from typing import Any

import yaml

TEXT = "text"
TEXT_MAP = "text-map"

# The text fields of a DeviceProfile, by path (keys as EdgeX spells them).
_OPERATION: dict[str, Any] = {"deviceResource": TEXT, "defaultValue": TEXT, "mappings": TEXT_MAP}
_COMMAND: dict[str, Any] = {"name": TEXT, "readWrite": TEXT, "resourceOperations": [_OPERATION]}
_PROPERTIES: dict[str, Any] = {
    k: TEXT for k in ("valueType", "readWrite", "units", "defaultValue", "assertion", "mediaType")
}
_RESOURCE: dict[str, Any] = {"name": TEXT, "description": TEXT, "properties": _PROPERTIES}
PROFILE: dict[str, Any] = {
    "name": TEXT,
    "manufacturer": TEXT,
    "description": TEXT,
    "model": TEXT,
    "labels": [TEXT],
    "deviceResources": [_RESOURCE],
    "deviceCommands": [_COMMAND],
}


class _NoAliases:
    """Refuse anchors and aliases: a profile never needs them, and an alias bomb (a few bytes
    expanding to millions of nodes) would otherwise get through."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):  # type: ignore[attr-defined]
            event = self.peek_event()  # type: ignore[attr-defined]
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases are not accepted", event.start_mark
            )
        return super().compose_node(parent, index)  # type: ignore[misc]


class TypedLoader(_NoAliases, yaml.SafeLoader):
    """Scalars resolved to numbers, booleans, dates..."""


class TextLoader(_NoAliases, yaml.BaseLoader):
    """Every scalar as the text it was written as."""


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list))


def merge(typed: Any, text: Any, spec: Any) -> Any:
    """``typed``, with the text of the scalars that ``spec`` declares as text."""
    if spec == TEXT:
        if typed is not None and not isinstance(typed, str) and _is_scalar(typed):
            return text if isinstance(text, str) else typed
        return typed
    if spec == TEXT_MAP:
        if isinstance(typed, dict) and isinstance(text, dict):
            return {
                str(k): (text[tk] if _is_scalar(text[tk]) and v is not None else v)
                for (k, v), tk in zip(typed.items(), text, strict=False)
            }
        return typed
    if isinstance(spec, list):
        if isinstance(typed, list) and isinstance(text, list) and len(typed) == len(text):
            return [merge(t, x, spec[0]) for t, x in zip(typed, text, strict=True)]
        return typed
    if isinstance(spec, dict) and isinstance(typed, dict) and isinstance(text, dict):
        fields = {k.lower(): v for k, v in spec.items()}
        out: dict[Any, Any] = {}
        for (key, value), text_key in zip(typed.items(), text, strict=False):
            sub = fields.get(str(key).lower())
            out[key] = value if sub is None else merge(value, text[text_key], sub)
        return out
    return typed


def load_profile(raw: bytes) -> Any:
    """The profile document in ``raw``, typed as EdgeX's decoder would type it."""
    typed = yaml.load(raw, Loader=TypedLoader)
    text = yaml.load(raw, Loader=TextLoader)
    return merge(typed, text, PROFILE)
