"""The move engine: every change of a device's owning service goes through here.

EdgeX's ``PATCH /device`` with a new ``serviceName``, ``POST /device?force=true`` by another
service, the implicit-add mode, ``POST /device/reassign`` and (later) registrations all call
:func:`move_device`. The protocol and its states are described in :mod:`edgemeta.domain.moves`;
in short: record the move → the new service accepts → **commit A** (the store names the new
owner; the old owner is told) → the old owner releases (confirmed, or a deadline) →
**commit B** (the new owner is told). Each step is a transaction; an interrupted move is
finished or failed by :func:`resume_stale` on any instance.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from typing import Any

from edgemeta.domain.errors import (
    Conflict,
    EdgeMetaError,
    NotFound,
    ServiceUnavailable,
)
from edgemeta.domain.events import Action, Change, EventType
from edgemeta.domain.moves import (
    Capabilities,
    Move,
    MoveReason,
    MoveState,
    Preflight,
    ProblemKind,
    ReleasePolicy,
    StatePolicy,
    preflight,
    raise_for,
    target_device,
)
from edgemeta.domain.records import Device
from edgemeta.ports import ListQuery, Page, ReleaseWatch, Tx
from edgemeta.security.principal import recorded_requester
from edgemeta.usecases.associations import ensure_profile_without_data
from edgemeta.usecases.common import new_id, not_found, now_ms
from edgemeta.usecases.deps import Deps

log = logging.getLogger("edgemeta.moves")


@dataclass(frozen=True, slots=True, kw_only=True)
class MoveRequest:
    """What a caller asks for."""

    device_name: str
    to_service: str
    policy: StatePolicy = StatePolicy.MIGRATE
    reason: MoveReason = MoveReason.OPERATOR
    expected_revision: int | None = None
    requested_by: str = ""
    note: str = ""
    target: Device | None = None  # the device as given (PATCH, forced add); None: derive it
    bypass_validation: bool = False


class MoveError(EdgeMetaError):
    """A move that ended without the device changing owner; ``move`` says how far it got."""

    def __init__(self, cause: EdgeMetaError, move: Move) -> None:
        super().__init__(cause.message)
        self.kind = cause.kind
        self.move = move


def _tagged(owner: str, device: Device, move: Move, action: Action = Action.UPDATE) -> Change:
    return Change(
        EventType.DEVICE,
        action,
        owner,
        device,
        device.profile_name,
        tags=(("moveId", move.id),),
    )


async def _by_delete(tx: Tx, service: str) -> bool:
    """Whether ``service`` must be told by delete and add rather than update (the C SDK)."""
    found = await tx.services.get(service)
    return found is not None and Capabilities.of(found).release_by_delete


async def _let_go(tx: Tx, owner: str, device: Device, move: Move) -> Change:
    """The event that makes ``owner`` stop serving ``device``: an update naming the new
    service, or for a C-SDK service (which ignores updates) a delete."""
    action = Action.DELETE if await _by_delete(tx, owner) else Action.UPDATE
    return _tagged(owner, device, move, action)


async def _take(tx: Tx, owner: str, device: Device, move: Move) -> Change:
    """The event that makes ``owner`` serve ``device``: an update naming it, or for a C-SDK
    service an add."""
    action = Action.ADD if await _by_delete(tx, owner) else Action.UPDATE
    return _tagged(owner, device, move, action)


async def _plan(deps: Deps, req: MoveRequest) -> tuple[Device, Device, Preflight, bool]:
    """The device, its target state, the pre-flight result, and whether its old owner
    acknowledges releases."""
    async with deps.store.read() as tx:
        device = await tx.devices.get(req.device_name)
        if device is None:
            raise not_found("device", req.device_name)
        target_service = await tx.services.get(req.to_service)
        old_service = await tx.services.get(device.service_name)
        count = await tx.devices.count_by_service(req.to_service)
        initial = await tx.moves.initial(device.name) if req.policy == StatePolicy.RESET else None
        target = req.target or target_device(device, req.to_service, req.policy, initial)
        target = replace(target, service_name=req.to_service)
        profile_ok = (
            not target.profile_name or await tx.profiles.get(target.profile_name) is not None
        )
    check = preflight(
        device,
        target_service,
        req.to_service,
        target_device_count=count,
        target_profile=target.profile_name,
        profile_exists=profile_ok,
        expected_revision=req.expected_revision,
    )
    acks = old_service is not None and Capabilities.of(old_service).acknowledges_release
    return device, target, check, acks


async def dry_run(deps: Deps, req: MoveRequest, correlation_id: str) -> Preflight:
    """Every check a move would make, including asking the new service, and no change."""
    device, target, check, _ = await _plan(deps, req)
    async with deps.store.read() as tx:
        active = await tx.moves.active(device.name)
    if active is not None:
        check = check.with_problem(
            ProblemKind.ALREADY_MOVING,
            f"device '{device.name}' is already being moved (move {active.id})",
        )
    if check.ok and not req.bypass_validation:
        try:
            await deps.validator.validate(req.to_service, target, correlation_id)
        except EdgeMetaError as exc:
            check = check.with_problem(
                ProblemKind.REFUSED,
                f"device service '{req.to_service}' does not accept it: {exc.message}",
            )
    return check


async def _save(tx: Tx, move: Move) -> Move:
    saved = replace(move, revision=move.revision + 1)
    await tx.moves.update(saved)
    return saved


async def _fail(deps: Deps, move: Move, cause: EdgeMetaError) -> MoveError:
    now = now_ms()
    failed = move.step("fail", now, "failed", cause.message).to(
        MoveState.FAILED, now, error=cause.message
    )
    try:
        async with deps.store.write() as tx:
            failed = await _save(tx, failed)
    except EdgeMetaError as exc:  # e.g. resumed by another instance meanwhile
        log.warning("could not record the failure of move %s: %s", move.id, exc.message)
    return MoveError(cause, failed)


async def move_device(deps: Deps, req: MoveRequest, correlation_id: str) -> Move:
    """Move a device to ``req.to_service``; returns the assigned move, or raises MoveError
    (the device stays with its owner) or a plain error if the request itself is invalid.

    With tracing on, the move is a ``move`` span (in the request's trace) with a child per
    step: ``move.accept``, ``move.commit``, ``move.release``, then ``move.assign`` or
    ``move.rollback``; the events it writes carry the trace to the device services."""
    attributes = {
        "edgemeta.device": req.device_name,
        "edgemeta.move.to": req.to_service,
        "edgemeta.move.reason": req.reason.value,
    }
    meter = deps.meter
    meter.move_started()
    state = ""
    try:
        with deps.tracing.span("move", attributes=attributes) as span:
            move = await _move_device(deps, req, correlation_id, span)
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "move %s: device '%s' moved from '%s' to '%s'",
                    move.id,
                    move.device_name,
                    move.from_service,
                    move.to_service,
                )
        state = move.state.value
        return move
    except MoveError as exc:
        state = exc.move.state.value
        raise
    finally:
        # A move refused before it was recorded (pre-flight) or taken over by another
        # instance has no final state here: it is in flight no longer, but not counted.
        meter.move_ended(state, req.reason.value)


async def _move_device(deps: Deps, req: MoveRequest, correlation_id: str, span: Any) -> Move:
    device, target, check, acks = await _plan(deps, req)
    raise_for(check)
    now = now_ms()
    move = Move(
        id=new_id(),
        device_name=device.name,
        from_service=device.service_name,
        to_service=req.to_service,
        policy=req.policy,
        reason=req.reason,
        requested_by=recorded_requester(req.requested_by),
        note=req.note,
        correlation_id=correlation_id,
        device_revision=device.revision,
        origin=device,
        target=target,
        created=now,
        modified=now,
    ).step("request", now, "recorded")
    if span is not None:
        span.set_attribute("edgemeta.move.id", move.id)
        span.set_attribute("edgemeta.move.from", move.from_service)
    async with deps.store.write() as tx:
        await tx.moves.add(move)  # Conflict if another move of this device is unfinished
    # The new owner is asked first; until commit A nothing about the device has changed.
    move = move.to(MoveState.ASSIGNING, now_ms())
    async with deps.store.write() as tx:
        move = await _save(tx, move)
    if not req.bypass_validation:
        began = time.perf_counter()
        try:
            with deps.tracing.span("move.accept", attributes={"edgemeta.service": req.to_service}):
                await deps.validator.validate(req.to_service, target, correlation_id)
        except EdgeMetaError as exc:
            raise await _fail(deps, move, exc) from None
        deps.meter.move_step("accept", time.perf_counter() - began)
    move = move.step("accept", now_ms(), "bypassed" if req.bypass_validation else "accepted")
    try:
        watch = (
            await deps.releases.watch(move.from_service, move.id, move.device_name)
            if acks
            else None
        )
    except EdgeMetaError as exc:  # e.g. the broker is down: end the move, or it blocks the device
        raise await _fail(deps, move, exc) from None
    try:
        try:
            move = await _commit_a(deps, move, correlation_id)
        except EdgeMetaError as exc:
            raise await _fail(deps, move, exc) from None
        return await _release_and_assign(deps, move, watch, acks, correlation_id)
    finally:
        if watch is not None:
            await watch.close()


class _CommandsInFlight(Exception):
    """Commit A found a command on its way to the old owner (a live hold); wait, try again."""

    def __init__(self, until: int) -> None:
        super().__init__(until)
        self.until = until


_HOLD_POLL = (0.002, 0.05)  # first and longest wait between looks at a device's command holds


async def _commit_a(deps: Deps, move: Move, cid: str) -> Move:
    """The store names the new owner; the old owner is told (releasing).

    Not while a command is on its way to the old owner: core-command writes a hold before it
    sends one (see :mod:`edgemeta.usecases.commands`), and no new hold is taken once the move
    is recorded, so this waits at most for the commands already sent, each bounded by its
    hold's expiry.
    """
    with deps.tracing.span("move.commit"):
        pause, waited = _HOLD_POLL[0], False
        while True:
            try:
                return await _commit_a_tx(deps, move, cid)
            except _CommandsInFlight as busy:
                if not waited:
                    log.debug("move %s waits for commands to %s", move.id, move.device_name)
                    waited = True
                left = max(0.0, (busy.until - now_ms()) / 1000)
                await asyncio.sleep(min(pause, left) or pause)
                pause = min(pause * 2, _HOLD_POLL[1])


async def _commit_a_tx(deps: Deps, move: Move, cid: str) -> Move:
    assert move.target is not None
    async with deps.store.write() as tx:
        current = await tx.devices.get(move.device_name, for_update=True)
        if current is None:
            raise NotFound(f"device '{move.device_name}' was deleted during the move")
        # With the row locked, a command either took its hold before (seen here) or will
        # find this move when it looks (and wait for it).
        until = await tx.moves.commands_in_flight(move.device_name, now_ms())
        if until is not None:
            raise _CommandsInFlight(until)
        if current.revision != move.device_revision:
            raise Conflict(
                f"device '{move.device_name}' changed during the move (revision "
                f"{current.revision}, planned from {move.device_revision}); try again"
            )
        now = now_ms()
        after = replace(
            move.target,
            id=current.id,
            name=current.name,
            service_name=move.to_service,
            created=current.created,
            modified=now,
            revision=current.revision + 1,
        )
        if current.profile_name and after.profile_name != current.profile_name:
            # A reset to the initial configuration may bring another profile: the change
            # rules decide, as for a PATCH.
            await ensure_profile_without_data(
                tx,
                current.profile_name,
                f"cannot be replaced as the profile of device '{current.name}'",
            )
        await tx.devices.update(after)
        move = move.step("commit", now, "new owner stored").to(MoveState.RELEASING, now)
        move = await _save(tx, move)
        await tx.outbox.append([await _let_go(tx, move.from_service, after, move)], cid)
    return move


async def _release_and_assign(
    deps: Deps, move: Move, watch: ReleaseWatch | None, acks: bool, cid: str
) -> Move:
    """Wait for the old owner to let go, then tell the new owner (or roll back)."""
    with deps.tracing.span(
        "move.release", attributes={"edgemeta.service": move.from_service}
    ) as span:
        move, rollback = await _released(deps, move, watch, acks)
        if span is not None:
            outcome = "rollback" if rollback else move.steps[-1].outcome
            span.set_attribute("edgemeta.move.release", outcome)
    if rollback:
        return await _rollback(deps, move, cid)
    began = time.perf_counter()
    move = await _commit_b(deps, move, cid)
    deps.meter.move_step("assign", time.perf_counter() - began)
    return move


async def _released(
    deps: Deps, move: Move, watch: ReleaseWatch | None, acks: bool
) -> tuple[Move, bool]:
    """The move with its release step, and whether it must be rolled back instead."""
    settings = deps.move_settings
    began = time.perf_counter()
    if watch is not None:
        if await _confirmed(watch, settings.ack_timeout):
            move = move.step("release", now_ms(), "confirmed")
        elif settings.release_policy == ReleasePolicy.ROLLBACK:
            deps.meter.move_ack_timeout()
            return move, True
        else:
            deps.meter.move_ack_timeout()
            move = move.step("release", now_ms(), "forced", "no confirmation in time")
    elif acks:
        move = move.step("release", now_ms(), "forced", "could not listen for a confirmation")
    else:
        assert move.origin is not None
        async with deps.store.read() as tx:
            by_delete = await _by_delete(tx, move.from_service)
        if deps.releases.nobody_listens(
            move.from_service, move.origin.profile_name, by_delete=by_delete
        ):
            move = move.step("release", now_ms(), "nobody serving")
        else:
            # An EdgeX device service cannot confirm: give it the deadline to act on the event.
            await asyncio.sleep(settings.release_deadline)
            move = move.step("release", now_ms(), "deadline", f"{settings.release_deadline:g}s")
    deps.meter.move_step("release", time.perf_counter() - began)
    return move, False


async def _confirmed(watch: ReleaseWatch, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            await watch.wait()
    except TimeoutError:
        return False
    return True


async def _commit_b(deps: Deps, move: Move, cid: str) -> Move:
    """The new owner is told; the move is assigned."""
    with deps.tracing.span("move.assign", attributes={"edgemeta.service": move.to_service}):
        return await _commit_b_tx(deps, move, cid)


async def _commit_b_tx(deps: Deps, move: Move, cid: str) -> Move:
    async with deps.store.write() as tx:
        stored = await tx.moves.get(move.id, for_update=True)
        if stored is None or stored.revision != move.revision:
            raise Conflict(f"move {move.id} was taken over by another instance")
        current = await tx.devices.get(move.device_name)
        if current is None:
            raise NotFound(f"device '{move.device_name}' was deleted during the move")
        now = now_ms()
        move = move.step("assign", now, "new owner told").to(MoveState.ASSIGNED, now)
        move = await _save(tx, move)
        await tx.outbox.append([await _take(tx, move.to_service, current, move)], cid)
    return move


async def _rollback(deps: Deps, move: Move, cid: str) -> Move:
    """The old owner did not confirm: give the device back to it, and tell it."""
    with deps.tracing.span("move.rollback", attributes={"edgemeta.service": move.from_service}):
        return await _rollback_tx(deps, move, cid)


async def _rollback_tx(deps: Deps, move: Move, cid: str) -> Move:
    assert move.origin is not None
    reason = f"device service '{move.from_service}' did not confirm the release in time"
    async with deps.store.write() as tx:
        current = await tx.devices.get(move.device_name, for_update=True)
        if current is None:
            raise NotFound(f"device '{move.device_name}' was deleted during the move")
        now = now_ms()
        back = replace(
            move.origin,
            id=current.id,
            created=current.created,
            modified=now,
            revision=current.revision + 1,
        )
        await tx.devices.update(back)
        move = move.step("rollback", now, "old owner restored", reason).to(
            MoveState.ROLLED_BACK, now, error=reason
        )
        move = await _save(tx, move)
        # The old owner serves again. The new owner was never told to serve, but it may have
        # found the device in its list while the store named it (a restart's reconcile between
        # commit A and now): tell it too, so that it lets go.
        await tx.outbox.append(
            [
                await _take(tx, move.from_service, back, move),
                await _let_go(tx, move.to_service, back, move),
            ],
            cid,
        )
    raise MoveError(ServiceUnavailable(reason), move)


async def resume_stale(deps: Deps) -> int:
    """Finish or fail the moves an interrupted instance left behind; returns how many."""
    settings = deps.move_settings
    cutoff = now_ms() - int(settings.stale_after * 1000)
    async with deps.store.read() as tx:
        stale = await tx.moves.stale(cutoff)
    done = 0
    for move in stale:
        try:
            with deps.tracing.span("move.resume", attributes={"edgemeta.move.id": move.id}):
                await _resume(deps, move)
            done += 1
        except Conflict:
            continue  # another instance claimed it
        except MoveError:
            done += 1  # ended (rolled back or failed) and recorded
        except EdgeMetaError as exc:
            log.warning("could not resume move %s: %s", move.id, exc.message)
    return done


async def _resume(deps: Deps, move: Move) -> None:
    now = now_ms()
    cid = move.correlation_id
    if move.state in (MoveState.REQUESTED, MoveState.ASSIGNING):
        # Interrupted before commit A: the device never changed. Record the failure.
        failed = move.step("resume", now, "failed", "interrupted before the device changed").to(
            MoveState.FAILED, now, error="interrupted before the device changed owner"
        )
        async with deps.store.write() as tx:
            await _save(tx, failed)
        return
    # Releasing: the store names the new owner. Tell the old one again, then finish.
    async with deps.store.read() as tx:
        old = await tx.services.get(move.from_service)
    acks = old is not None and Capabilities.of(old).acknowledges_release
    watch = (
        await deps.releases.watch(move.from_service, move.id, move.device_name) if acks else None
    )
    try:
        async with deps.store.write() as tx:
            claimed = await _save(tx, move.step("resume", now, "release notice sent again"))
            current = await tx.devices.get(move.device_name)
            if current is not None:
                await tx.outbox.append(
                    [await _let_go(tx, move.from_service, current, claimed)], cid
                )
        await _release_and_assign(deps, claimed, watch, acks, cid)
    finally:
        if watch is not None:
            await watch.close()


async def get_move(deps: Deps, id_: str) -> Move:
    """A move by id."""
    async with deps.store.read() as tx:
        found = await tx.moves.get(id_)
    if found is None:
        raise not_found("move", id_)
    return found


async def list_moves(
    deps: Deps, query: ListQuery, *, device: str | None = None, service: str | None = None
) -> Page[Move]:
    """Move history of a device, or of a service (moves from or to it)."""
    async with deps.store.read() as tx:
        if (
            device is not None
            and await tx.devices.get(device) is None
            and (await tx.moves.page(ListQuery(limit=0), device=device)).total == 0
        ):
            raise not_found("device", device)
        return await tx.moves.page(query, device=device, service=service)


async def ensure_not_moving(tx: Tx, name: str) -> None:
    """Refuse a change to a device while it is being moved (one operation at a time)."""
    active = await tx.moves.active(name)
    if active is not None:
        raise Conflict(
            f"device '{name}' is being moved (move {active.id}, {active.state.value}); "
            "try again when the move has ended"
        )


__all__ = [
    "MoveError",
    "MoveRequest",
    "dry_run",
    "ensure_not_moving",
    "get_move",
    "list_moves",
    "move_device",
    "resume_stale",
]
