"""Move resumption: finish or fail, now and then, the moves an interrupted instance left.

Any instance may resume any stale move (the store settles who does, see
:func:`edgemeta.usecases.moves.resume_stale`); this worker only sets the pace: a third of
``stale_after``, so a stale move waits at most a third more than it must.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from edgemeta.usecases.deps import Deps
from edgemeta.usecases.moves import resume_stale

log = logging.getLogger("edgemeta.moves")


class MoveResumer:
    """The background task that calls :func:`resume_stale` every ``stale_after / 3``."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start resuming (the first pass runs at once)."""
        self._task = asyncio.create_task(self._run(), name="edgemeta-move-resume")

    async def stop(self) -> None:
        """Stop; a pass in progress is cancelled (the store keeps each move consistent)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        period = self.deps.move_settings.stale_after / 3
        while True:
            try:
                done = await resume_stale(self.deps)
                if done:
                    log.info("resumed %d interrupted moves", done)
            except Exception:
                log.exception("resuming interrupted moves failed")
            await asyncio.sleep(period)
