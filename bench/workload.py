"""What the benchmark stores and asks for: services, profiles, devices and the wrk scripts.

The data set (documented in bench/README.md):

- ``SERVICES`` device services (``bench-svc-00`` ...), ``PROFILES`` device profiles
  (``bench-profile-00`` ...), each profile with 8 resources and 3 commands;
- seeded device ``i`` is ``dev-%07d``, owned by service ``i % SERVICES`` (an even spread:
  N / 20 devices per service, so a service holds 500 devices at 10k and 5,000 at 100k) and
  using profile ``(i * 7 + i // SERVICES) % PROFILES``;
- every device looks like a real Modbus device: description, two labels, a ``modbus-tcp``
  protocol block with five properties, two autoEvents naming resources of its profile, and
  a ``properties`` object; about 650 bytes of JSON as served.

Devices added by the write scenarios use the same document with their own unique names.
"""

from __future__ import annotations

import orjson

SERVICES = 20
PROFILES = 50
PAGE = 100
BATCH = 100

RESOURCES = (
    ("Temperature", "Float32", "R", "DegreesCelsius"),
    ("Humidity", "Float32", "R", "Percent"),
    ("Pressure", "Float32", "R", "KiloPascal"),
    ("Voltage", "Float64", "R", "Volt"),
    ("Current", "Float64", "R", "Ampere"),
    ("SetPoint", "Float32", "RW", "DegreesCelsius"),
    ("Enabled", "Bool", "RW", ""),
    ("Firmware", "String", "R", ""),
)

# One device document; %s fields in order: name, serviceName, profileName, the address's
# last two octets ("3.17"). No other '%' may appear (the wrk scripts use string.format too).
DEVICE_TEMPLATE = (
    '{"name":"%s","description":"Air handling unit sensor block, building B, floor 3",'
    '"adminState":"UNLOCKED","operatingState":"UP","labels":["hvac","building-b"],'
    '"location":{"building":"B","floor":3},'
    '"serviceName":"%s","profileName":"%s",'
    '"autoEvents":[{"interval":"30s","onChange":false,"sourceName":"Temperature"},'
    '{"interval":"5m","onChange":true,"sourceName":"Humidity"}],'
    '"protocols":{"modbus-tcp":{"Address":"10.20.%s","Port":"502","UnitID":"1",'
    '"Timeout":"5","IdleTimeout":"5"}},'
    '"tags":{"zone":"north"},"properties":{"installed":"2024-03-01","vendorSerial":"SN-7731"}}'
)
ITEM_TEMPLATE = '{"apiVersion":"v3","device":' + DEVICE_TEMPLATE + "}"


def service_name(i: int) -> str:
    return f"bench-svc-{i:02d}"


def profile_name(i: int) -> str:
    return f"bench-profile-{i:02d}"


def device_name(i: int) -> str:
    return f"dev-{i:07d}"


def device_service(i: int) -> int:
    return i % SERVICES


def device_profile(i: int) -> int:
    return (i * 7 + i // SERVICES) % PROFILES


def address(i: int) -> str:
    return f"{(i // 250) % 250}.{i % 250 + 1}"


def service_requests() -> bytes:
    return orjson.dumps(
        [
            {
                "apiVersion": "v3",
                "service": {
                    "name": service_name(i),
                    "description": "Modbus device service",
                    "labels": ["modbus"],
                    "baseAddress": f"http://{service_name(i)}:59901",
                    "adminState": "UNLOCKED",
                },
            }
            for i in range(SERVICES)
        ]
    )


def _profile(i: int) -> dict[str, object]:
    resources = [
        {
            "name": name,
            "description": f"{name} reading",
            "isHidden": False,
            "properties": {"valueType": vt, "readWrite": rw, "units": units},
            "attributes": {"primaryTable": "HOLDING_REGISTERS", "startingAddress": 100 + k},
        }
        for k, (name, vt, rw, units) in enumerate(RESOURCES)
    ]
    commands = [
        {
            "name": "Climate",
            "readWrite": "R",
            "resourceOperations": [
                {"deviceResource": "Temperature"},
                {"deviceResource": "Humidity"},
                {"deviceResource": "Pressure"},
            ],
        },
        {
            "name": "Power",
            "readWrite": "R",
            "resourceOperations": [{"deviceResource": "Voltage"}, {"deviceResource": "Current"}],
        },
        {
            "name": "Control",
            "readWrite": "RW",
            "resourceOperations": [{"deviceResource": "SetPoint"}, {"deviceResource": "Enabled"}],
        },
    ]
    return {
        "name": profile_name(i),
        "manufacturer": f"Acme{i % 5}",
        "model": f"AHU-{i:03d}",
        "description": "Air handling unit controller",
        "labels": ["hvac"],
        "deviceResources": resources,
        "deviceCommands": commands,
    }


def profile_requests() -> bytes:
    return orjson.dumps([{"apiVersion": "v3", "profile": _profile(i)} for i in range(PROFILES)])


def seed_body(start: int, stop: int) -> bytes:
    """An add-device batch for seeded devices ``start`` .. ``stop - 1``."""
    items = [
        ITEM_TEMPLATE
        % (
            device_name(i),
            service_name(device_service(i)),
            profile_name(device_profile(i)),
            address(i),
        )
        for i in range(start, stop)
    ]
    return ("[" + ",".join(items) + "]").encode()


# -- wrk scripts ----------------------------------------------------------------------------

_COMMON = r"""
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

function init(args)
  math.randomseed(SEED + (tid or 0) * 7919)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,"connect":%.0f,"read":%.0f,'
    .. '"write":%.0f,"status":%.0f,"timeout":%.0f,"p50_us":%.0f,"p90_us":%.0f,'
    .. '"p99_us":%.0f,"p999_us":%.0f,"max_us":%.0f,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
"""


def _lua_str(s: str) -> str:
    return "[==[" + s + "]==]"


def _lua_list(items: list[str]) -> str:
    return "{" + ", ".join(_lua_str(x) for x in items) + "}"


def _header(seed: int) -> str:
    return f"SEED = {seed}\n" + _COMMON


def lua_get(seed: int, path: str) -> str:
    """A constant GET (the ceiling apps, ping)."""
    return _header(seed) + f'\nwrk.method = "GET"\nwrk.path = {_lua_str(path)}\n'


def lua_get_by_name(seed: int, devices: int) -> str:
    """GET /device/name/<a random seeded device>."""
    return (
        _header(seed)
        + f"""
local n = {devices}
request = function()
  return wrk.format("GET", string.format("/api/v3/device/name/dev-%07d", math.random(0, n - 1)))
end
"""
    )


def lua_list_by_service(seed: int, devices: int, *, first_page_only: bool) -> str:
    """GET /device/service/name/<random service>?offset=<random page>&limit=100."""
    per_service = devices // SERVICES
    pages = 1 if first_page_only else max(1, per_service // PAGE)
    services = [service_name(i) for i in range(SERVICES)]
    return (
        _header(seed)
        + f"""
local services = {_lua_list(services)}
local pages = {pages}
request = function()
  local s = services[math.random(1, #services)]
  local offset = (math.random(1, pages) - 1) * {PAGE}
  return wrk.format("GET", string.format(
    "/api/v3/device/service/name/%s?offset=%d&limit={PAGE}", s, offset))
end
"""
    )


def _lua_device_picker() -> str:
    services = [service_name(i) for i in range(SERVICES)]
    profiles = [profile_name(i) for i in range(PROFILES)]
    return f"""
local services = {_lua_list(services)}
local profiles = {_lua_list(profiles)}
local item = {_lua_str(ITEM_TEMPLATE)}
local headers = {{["Content-Type"] = "application/json"}}
local function device(name, k)
  return string.format(item, name, services[math.random(1, #services)],
    profiles[math.random(1, #profiles)], string.format("%d.%d", k % 250, k % 249 + 1))
end
"""


def lua_add(seed: int, prefix: str) -> str:
    """POST /device with one device of a name never used before."""
    return (
        _header(seed)
        + _lua_device_picker()
        + f"""
local i = 0
request = function()
  i = i + 1
  local name = string.format("{prefix}-%d-%d", tid or 0, i)
  return wrk.format("POST", "/api/v3/device", headers, "[" .. device(name, i) .. "]")
end
"""
    )


def lua_batch(seed: int, prefix: str, size: int = BATCH) -> str:
    """POST /device with ``size`` devices of names never used before."""
    return (
        _header(seed)
        + _lua_device_picker()
        + f"""
local r = 0
local parts = {{}}
request = function()
  r = r + 1
  for k = 1, {size} do
    parts[k] = device(string.format("{prefix}-%d-%d-%d", tid or 0, r, k), r * {size} + k)
  end
  return wrk.format("POST", "/api/v3/device", headers, "[" .. table.concat(parts, ",") .. "]")
end
"""
    )
