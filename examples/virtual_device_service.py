"""A virtual device service on edgemeta's SDK: random and counter values, a writable setpoint.

    .venv/bin/edgemeta serve --bus-url mqtt://127.0.0.1:1883                 # one terminal
    .venv/bin/python -m examples.virtual_device_service \\
        --bus-url mqtt://127.0.0.1:1883                                      # another

At start it registers the device service ``device-virtual`` (if absent), its profile
(``examples/virtual/virtual-device.profile.yaml``) and its device ``virtual-thermostat``
(``examples/virtual/virtual-device.devices.yaml``), then serves command requests over the bus
(and EdgeX's device-service REST routes on ``--http-port``, default 59900), sends the
device's autoEvents to core-data, and takes part in moves. Ctrl-C stops it.

Resources: ``random`` (Int32, 0..100, a new value at each read), ``counter`` (Int64, counts
its reads), ``setpoint`` (Float32, writable, 5..30: the SDK refuses other values before the
driver sees them); the ``values`` command reads all three. It also "discovers" devices named
by ``--discover`` (added only if one of the service's provision watchers takes them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgemeta.sdk import Device, DeviceService, DiscoveredDevice, Resource, load_yaml

HERE = Path(__file__).resolve().parent / "virtual"
PROFILE = HERE / "virtual-device.profile.yaml"
DEVICES = HERE / "virtual-device.devices.yaml"


class VirtualDriver:
    """Simulated devices: each has its own counter and setpoint."""

    def __init__(self, discoverable: Sequence[str] = ()) -> None:
        self.counters: dict[str, int] = {}
        self.setpoints: dict[str, float] = {}
        self.discoverable = list(discoverable)

    async def read(self, device: Device, resources: Sequence[Resource]) -> dict[str, Any]:
        """The current values of ``resources``."""
        out: dict[str, Any] = {}
        for r in resources:
            if r.name == "random":
                out[r.name] = random.randint(0, 100)
            elif r.name == "counter":
                self.counters[device.name] = self.counters.get(device.name, 0) + 1
                out[r.name] = self.counters[device.name]
            else:  # setpoint: what was written last, else the profile's default
                out[r.name] = self.setpoints.get(device.name, float(r.default_value or 0))
        return out

    async def write(self, device: Device, values: Sequence[tuple[Resource, Any]]) -> None:
        """Keep the written setpoint (already checked against 5..30 by the SDK)."""
        for resource, value in values:
            if resource.name == "setpoint":  # the profile's only writable resource
                self.setpoints[device.name] = float(value)

    async def discover(self) -> list[DiscoveredDevice]:
        """The simulated devices "found on the network"."""
        return [
            DiscoveredDevice(name, {"other": {"Address": f"simulated-{name}"}})
            for name in self.discoverable
        ]


def build(
    *,
    name: str = "device-virtual",
    api_url: str = "http://127.0.0.1:59881",
    bus: Any = "mqtt://127.0.0.1:1883",
    prefix: str = "edgex",
    http_port: int | None = 59900,
    discoverable: Sequence[str] = (),
    **options: Any,
) -> DeviceService:
    """The virtual device service (not started)."""
    return DeviceService(
        name,
        VirtualDriver(discoverable),
        api_url=api_url,
        bus=bus,
        prefix=prefix,
        http_port=http_port,
        profiles=[load_yaml(PROFILE)],
        devices=load_yaml(DEVICES)["deviceList"],
        **options,
    )


async def main(argv: Sequence[str] | None = None) -> None:
    """Run the service until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="device-virtual")
    parser.add_argument("--url", default="http://127.0.0.1:59881", help="edgemeta's API")
    parser.add_argument("--bus-url", default="mqtt://127.0.0.1:1883", help="edgemeta's bus")
    parser.add_argument("--prefix", default="edgex", help="edgemeta's --bus-prefix")
    parser.add_argument("--http-port", type=int, default=59900, help="0: no REST endpoint")
    parser.add_argument("--discover", nargs="*", default=[], help="device names to discover")
    parser.add_argument("--token", help="a JWT, with authentication on")
    parser.add_argument("--api-key", help="an API key, with authentication on")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not one line per request
    service = build(
        name=args.name,
        api_url=args.url,
        bus=args.bus_url,
        prefix=args.prefix,
        http_port=args.http_port or None,
        discoverable=args.discover,
        token=args.token,
        api_key=args.api_key,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with service:
        if args.discover:
            found = await service.discover()
            print(f"discovery: added {found.added}, unmatched {found.unmatched}", flush=True)
        print(
            f"{args.name}: serving {sorted(service.serving)} on {args.bus_url}"
            + (f" and http://127.0.0.1:{args.http_port}" if args.http_port else ""),
            flush=True,
        )
        await stop.wait()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
