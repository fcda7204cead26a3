"""Moves and initial device configurations, in SQL shared by every database.

A move's row keeps its document plus the target device (the state the new service gets), so
an interrupted move can be resumed by any instance. The partial unique index on unfinished
moves per device is what makes moves of one device one at a time, across instances.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from edgemeta import documents as docs
from edgemeta.domain.errors import Conflict
from edgemeta.domain.moves import ACTIVE_STATES, Move
from edgemeta.domain.records import Device
from edgemeta.ports import ListQuery, Page
from edgemeta.store.driver import DocTexts, Driver

_SAVE_INITIAL = (
    "INSERT INTO device_initial (name, created, content) VALUES (?, ?, ?)"
    " ON CONFLICT (name) DO UPDATE SET created = excluded.created, content = excluded.content"
)

_ACTIVE = "state IN (" + ", ".join(f"'{s}'" for s in ACTIVE_STATES) + ")"


class SqlMoveRepo:
    """Device moves (operations and history) and initial configurations."""

    def __init__(self, db: Driver, texts: DocTexts | None = None) -> None:
        self.db = db
        self.texts = texts

    async def add(self, move: Move) -> None:
        """Record a new move; Conflict if the device already has an unfinished one."""
        # ON CONFLICT on the one-active-move index rather than catching the violation: on
        # PostgreSQL a violation aborts the transaction, and the Conflict could then not name
        # the move in the way.
        inserted = await self.db.execute(
            "INSERT INTO device_move (id, device_name, from_service, to_service, state,"
            " created, modified, revision, content) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            f" ON CONFLICT (device_name) WHERE {_ACTIVE} DO NOTHING",
            move.id,
            move.device_name,
            move.from_service,
            move.to_service,
            move.state.value,
            move.created,
            move.modified,
            move.revision,
            docs.move_content(move),
        )
        if inserted != 1:
            active = await self._active_id(move.device_name)
            raise Conflict(
                f"device '{move.device_name}' is already being moved"
                + (f" (move {active})" if active else "")
            )

    async def _active_id(self, device_name: str) -> str | None:
        row = await self.db.fetchone(
            f"SELECT id FROM device_move WHERE device_name = ? AND {_ACTIVE}", device_name
        )
        return None if row is None else str(row[0])

    async def update(self, move: Move) -> None:
        """Store the move's new state if nobody changed it since ``move.revision - 1``."""
        n = await self.db.execute(
            "UPDATE device_move SET state = ?, modified = ?, revision = ?, content = ?"
            " WHERE id = ? AND revision = ?",
            move.state.value,
            move.modified,
            move.revision,
            docs.move_content(move),
            move.id,
            move.revision - 1,
        )
        if n != 1:
            raise Conflict(f"move {move.id} was changed concurrently")

    async def get(self, id_: str, *, for_update: bool = False) -> Move | None:
        """The move with this id."""
        lock = self.db.dialect.for_update if for_update else ""
        row = await self.db.fetchone(f"SELECT content FROM device_move WHERE id = ?{lock}", id_)
        return None if row is None else docs.move_from_content(row[0])

    async def active(self, device_name: str) -> Move | None:
        """The device's unfinished move, if any."""
        row = await self.db.fetchone(
            f"SELECT content FROM device_move WHERE device_name = ? AND {_ACTIVE}", device_name
        )
        return None if row is None else docs.move_from_content(row[0])

    async def stale(self, modified_before: int, limit: int = 100) -> list[Move]:
        """Unfinished moves nobody has advanced since ``modified_before`` (ms)."""
        rows = await self.db.fetchall(
            f"SELECT content FROM device_move WHERE {_ACTIVE} AND modified < ?"
            " ORDER BY modified LIMIT ?",
            modified_before,
            limit,
        )
        return [docs.move_from_content(r[0]) for r in rows]

    async def page(
        self, query: ListQuery, *, device: str | None = None, service: str | None = None
    ) -> Page[Move]:
        """Moves of one device, or from or to one service, oldest first."""
        if device is not None:
            cond, args = "device_name = ?", [device]
        elif service is not None:
            cond, args = "(from_service = ? OR to_service = ?)", [service, service]
        else:
            cond, args = "1 = 1", []
        total = int(await self.db.fetchval(f"SELECT count(*) FROM device_move WHERE {cond}", *args))
        if total == 0 or query.limit == 0 or query.offset >= total:
            return Page(total, [])
        rows = await self.db.fetchall(
            f"SELECT content FROM device_move WHERE {cond} ORDER BY created, seq LIMIT ? OFFSET ?",
            *args,
            query.limit,
            query.offset,
        )
        return Page(total, [docs.move_from_content(r[0]) for r in rows])

    async def hold_commands(self, hold_id: str, device_name: str, expires: int) -> None:
        """Note a command on its way to the device's owner, live until ``expires`` (ms)."""
        await self.db.execute(
            "INSERT INTO command_hold (id, device_name, expires) VALUES (?, ?, ?)",
            hold_id,
            device_name,
            expires,
        )

    async def drop_command_hold(self, hold_id: str) -> None:
        """The command is answered (or given up): its hold no longer fences moves."""
        await self.db.execute("DELETE FROM command_hold WHERE id = ?", hold_id)

    async def commands_in_flight(self, device_name: str, now: int) -> int | None:
        """When the device's last live command hold expires (ms), or None when none is live.

        Holds that expired (their process died before dropping them) are deleted here, in the
        move's own write transaction, so they are not looked at again.
        """
        await self.db.execute(
            "DELETE FROM command_hold WHERE device_name = ? AND expires <= ?", device_name, now
        )
        until = await self.db.fetchval(
            "SELECT max(expires) FROM command_hold WHERE device_name = ?", device_name
        )
        return None if until is None else int(until)

    async def save_initial(self, device: Device) -> None:
        """Keep the device's configuration as first provisioned (replacing a previous device's
        of the same name, which was deleted)."""
        await self.db.execute(
            _SAVE_INITIAL,
            device.name,
            device.created,
            (self.texts.get(device) if self.texts else None)
            or orjson.dumps(docs.device_doc(device)).decode(),
        )

    async def save_initial_many(self, devices: Sequence[Device]) -> None:
        """:meth:`save_initial` for each of ``devices``, with one prepared statement."""
        rows = [
            (
                d.name,
                d.created,
                (self.texts.get(d) if self.texts else None)
                or orjson.dumps(docs.device_doc(d)).decode(),
            )
            for d in devices
        ]
        if len(rows) == 1:
            await self.db.execute(_SAVE_INITIAL, *rows[0])
        elif rows:
            await self.db.executemany(_SAVE_INITIAL, rows)

    async def initial(self, name: str) -> Device | None:
        """The device's initial configuration."""
        row = await self.db.fetchone("SELECT content FROM device_initial WHERE name = ?", name)
        return None if row is None else docs.device_from(orjson.loads(row[0]))

    async def drop_initial(self, name: str) -> None:
        """Forget a deleted device's initial configuration."""
        await self.db.execute("DELETE FROM device_initial WHERE name = ?", name)
