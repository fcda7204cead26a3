"""Rules a device profile must satisfy on its own (EdgeX ``ValidateDeviceProfileDTO``).

These hold for every stored profile, whichever endpoint wrote it: resource and command names
are unique within the profile, a Binary resource is never writable, every resource operation
names an existing resource, and a command's access mode fits its resources'.
"""

from __future__ import annotations

from edgemeta.domain.errors import ContractInvalid
from edgemeta.domain.records import DeviceProfile, ReadWrite


def validate_profile(profile: DeviceProfile) -> None:
    """Raise ContractInvalid if ``profile`` breaks a whole-profile rule."""
    resources: dict[str, ReadWrite] = {}
    for r in profile.device_resources:
        if r.name in resources:
            raise ContractInvalid(f"device resource {r.name} is duplicated")
        if r.properties.value_type == "Binary" and r.properties.read_write.writable:
            raise ContractInvalid(
                f"write permission not support Binary value type for resource '{r.name}'"
            )
        resources[r.name] = r.properties.read_write
    commands: set[str] = set()
    for c in profile.device_commands:
        if c.name in commands:
            raise ContractInvalid(f"device command {c.name} is duplicated")
        commands.add(c.name)
        for op in c.resource_operations:
            mode = resources.get(op.device_resource)
            if mode is None:
                raise ContractInvalid(
                    f"device command '{c.name}' references device resource "
                    f"'{op.device_resource}', which the profile does not have"
                )
            if mode in (ReadWrite.RW, ReadWrite.WR):
                continue
            if _norm(c.read_write) != _norm(mode):
                raise ContractInvalid(
                    f"device command '{c.name}' has readWrite {c.read_write.value}, which "
                    f"device resource '{op.device_resource}' ({mode.value}) does not allow"
                )


def _norm(mode: ReadWrite) -> ReadWrite:
    return ReadWrite.RW if mode == ReadWrite.WR else mode
