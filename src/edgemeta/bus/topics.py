"""The one place EdgeX topics are built and matched.

Topics are ``/``-separated levels; filters use MQTT wildcards (``+`` one level, ``#`` the rest,
only at the end). Names become levels, so a name holding a character with a meaning in topics
is escaped: ``/``, ``+`` and ``#`` always (``%2F``, ``%2B``, ``%23``; EdgeX would publish them raw,
making an invalid or misleading topic); with ``name_escape`` the whole name is escaped the way
EdgeX's ``EnableNameFieldEscape`` does (``url.PathEscape`` plus ``+-._~``).
"""

from __future__ import annotations

from urllib.parse import quote

SYSTEM_EVENTS = "system-events"
SOURCE = "core-metadata"

_MINIMAL = str.maketrans({"/": "%2F", "+": "%2B", "#": "%23"})
_EDGEX_EXTRA = str.maketrans({"+": "%2B", "-": "%2D", ".": "%2E", "_": "%5F", "~": "%7E"})


def level(name: str, *, name_escape: bool = False) -> str:
    """A name as one topic level."""
    if name_escape:
        # Go's url.PathEscape keeps only unreserved characters and $ & + : = @ in a segment.
        return quote(name, safe="$&:=@").translate(_EDGEX_EXTRA)
    return name.translate(_MINIMAL)


def system_event_topic(
    prefix: str,
    type_: str,
    action: str,
    owner: str,
    profile_name: str = "",
    *,
    name_escape: bool = False,
) -> str:
    """``<prefix>/system-events/core-metadata/<type>/<action>/<owner>[/<profile>]``."""
    owner_level = level(owner, name_escape=name_escape)
    topic = f"{prefix}/{SYSTEM_EVENTS}/{SOURCE}/{type_}/{action}/{owner_level}"
    if profile_name:
        topic += "/" + level(profile_name, name_escape=name_escape)
    return topic


def validate_topic(prefix: str, service: str, *, name_escape: bool = False) -> str:
    """Where a device service takes validation requests: ``<prefix>/<svc>/validate/device``."""
    return f"{prefix}/{level(service, name_escape=name_escape)}/validate/device"


def response_topic(prefix: str, service: str, request_id: str, *, name_escape: bool = False) -> str:
    """Where its reply comes: ``<prefix>/response/<svc>/<requestID>``."""
    return f"{prefix}/response/{level(service, name_escape=name_escape)}/{request_id}"


def valid_filter(topic_filter: str) -> bool:
    """Whether a subscription filter is well formed (``#`` last and alone in its level)."""
    if not topic_filter:
        return False
    levels = topic_filter.split("/")
    for i, lv in enumerate(levels):
        if "#" in lv and (lv != "#" or i != len(levels) - 1):
            return False
        if "+" in lv and lv != "+":
            return False
    return True


def matches(topic_filter: str, topic: str) -> bool:
    """Whether ``topic`` matches the MQTT-style ``topic_filter``."""
    f = topic_filter.split("/")
    t = topic.split("/")
    for i, lv in enumerate(f):
        if lv == "#":
            return True
        if i >= len(t):
            return False
        if lv != "+" and lv != t[i]:
            return False
    return len(f) == len(t)


COMMAND_REQUEST = "device/command/request"  # EdgeX's CoreCommandDeviceRequestPublishTopic


def command_topic(
    prefix: str, service: str, device: str, command: str, method: str, *, name_escape: bool = False
) -> str:
    """Where a device service takes commands:
    ``<prefix>/device/command/request/<svc>/<device>/<command>/<get|set>``."""
    names = "/".join(level(n, name_escape=name_escape) for n in (service, device, command))
    return f"{prefix}/{COMMAND_REQUEST}/{names}/{method}"
