"""The device profile change rules (EdgeX ADR 0021, "Rules on Changes to a Device Profile").

A change to a stored profile is judged by its **diff** against what is stored, whichever
endpoint made it (whole-profile PUT in JSON or YAML, basic-info PATCH, resource or command
POST/PATCH/DELETE):

=========================================  ==========  =========================================
field                                      rule        blocked while
=========================================  ==========  =========================================
id, name                                   Never       always
manufacturer, description, model, labels   Anytime     never
resource description/isHidden/tags/attrs   Anytime     never
command isHidden/readWrite/tags            Anytime     never
resources and commands added               Anytime     never
resource removed (or renamed)              Situational it has events or readings; a device's
                                                       autoEvent or a command names it
resource properties changed                Situational it has events or readings
command removed (or renamed)               Situational it has events or readings; a device's
                                                       autoEvent names it
command resourceOperations changed         Situational it has events or readings
=========================================  ==========  =========================================

All refusals are Conflict (409) but one: a resource that a command still names answers
ContractInvalid (400), as EdgeX does, since the profile itself would be invalid.

A rename is a removal and an addition (a name is the key of a resource or command). The
functions here are pure: the use case gathers the :class:`Usage` from the store and asks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from edgemeta.domain.errors import Conflict, ContractInvalid
from edgemeta.domain.records import DeviceProfile

ANYTIME = "Anytime"
SITUATIONAL = "Situational"
NEVER = "Never"


@dataclass(frozen=True, slots=True)
class DataUse:
    """How much core-data holds for one resource or command (events read from it, readings
    of it), and one device it came from."""

    events: int
    readings: int
    device: str

    def describe(self) -> str:
        """E.g. ``"it has 3 events and 12 readings (from device 'd1')"``."""
        parts = []
        if self.events:
            parts.append(f"{self.events} events")
        if self.readings:
            parts.append(f"{self.readings} readings")
        return f"it has {' and '.join(parts)} (from device '{self.device}')"


@dataclass(frozen=True, slots=True)
class Usage:
    """What holds a profile's resources and commands.

    ``resource_data``: readings per resource name (and events whose source is the resource);
    ``command_data``: events per command name; ``auto_events``: for each source name, one
    device whose autoEvents name it.
    """

    resource_data: Mapping[str, DataUse] = field(default_factory=dict)
    command_data: Mapping[str, DataUse] = field(default_factory=dict)
    auto_events: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Diff:
    """What a change removes or alters in the parts of a profile the rules care about."""

    removed_resources: tuple[str, ...]
    changed_properties: tuple[str, ...]
    removed_commands: tuple[str, ...]
    changed_operations: tuple[str, ...]

    @property
    def situational(self) -> bool:
        """Whether anything changed that is only allowed while not associated."""
        return bool(
            self.removed_resources
            or self.changed_properties
            or self.removed_commands
            or self.changed_operations
        )

    def names(self) -> tuple[str, ...]:
        """Every resource or command name the situational changes touch."""
        return (
            *self.removed_resources,
            *self.changed_properties,
            *self.removed_commands,
            *self.changed_operations,
        )


def diff(before: DeviceProfile, after: DeviceProfile) -> Diff:
    """The situational parts of the change from ``before`` to ``after``."""
    new_resources = {r.name: r for r in after.device_resources}
    new_commands = {c.name: c for c in after.device_commands}
    removed_r: list[str] = []
    changed_p: list[str] = []
    for r in before.device_resources:
        n = new_resources.get(r.name)
        if n is None:
            removed_r.append(r.name)
        elif n.properties != r.properties:
            changed_p.append(r.name)
    removed_c: list[str] = []
    changed_o: list[str] = []
    for c in before.device_commands:
        m = new_commands.get(c.name)
        if m is None:
            removed_c.append(c.name)
        elif m.resource_operations != c.resource_operations:
            changed_o.append(c.name)
    return Diff(tuple(removed_r), tuple(changed_p), tuple(removed_c), tuple(changed_o))


def check_identity(before: DeviceProfile, given_id: str) -> None:
    """Never: a profile's id cannot change (its name is the key it is found by)."""
    if given_id and given_id != before.id:
        raise Conflict(
            f"device profile '{before.name}': id cannot change (rule {NEVER}); stored id is "
            f"'{before.id}', the request has '{given_id}'"
        )


def _check(
    profile: str,
    subject: str,
    use: DataUse | None,
    referrer: str | None = None,
) -> None:
    """Conflict when data (``use``) or a configuration ``referrer`` holds ``subject``."""
    if use is not None:
        raise Conflict(
            f"device profile '{profile}': {subject} (rule {SITUATIONAL}: only while not "
            f"associated with events or readings); {use.describe()}"
        )
    if referrer is not None:
        raise Conflict(f"device profile '{profile}': {subject}: {referrer}")


def judge(before: DeviceProfile, after: DeviceProfile, change: Diff, usage: Usage) -> None:
    """Conflict (409) naming the field, the rule and what blocks it, if the change is not
    allowed (ContractInvalid, 400, when a command still names a removed resource); returns
    if it is."""
    p = before.name
    auto = usage.auto_events
    for name in change.removed_resources:
        subject = f"device resource '{name}' cannot be removed or renamed"
        device = auto.get(name)
        _check(p, subject, usage.resource_data.get(name))
        _check(
            p, subject, None, f"device '{device}' names it in its autoEvents" if device else None
        )
        for c in after.device_commands:
            if any(op.device_resource == name for op in c.resource_operations):
                # EdgeX answers 400 here, not 409: the profile itself would become invalid
                # (a command naming a missing resource), whoever uses it.
                raise ContractInvalid(
                    f"device profile '{p}': {subject}: "
                    f"device command '{c.name}' names it in its resourceOperations"
                )
    for name in change.changed_properties:
        _check(
            p, f"deviceResources[{name}].properties cannot change", usage.resource_data.get(name)
        )
    for name in change.removed_commands:
        subject = f"device command '{name}' cannot be removed or renamed"
        device = auto.get(name)
        _check(p, subject, usage.command_data.get(name))
        _check(
            p, subject, None, f"device '{device}' names it in its autoEvents" if device else None
        )
    for name in change.changed_operations:
        _check(
            p,
            f"deviceCommands[{name}].resourceOperations cannot change",
            usage.command_data.get(name),
        )
