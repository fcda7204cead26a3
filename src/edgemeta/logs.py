"""Log set-up for ``edgemeta serve``: text or JSON lines, with the request's correlation id.

``EDGEMETA_LOG_FORMAT=json`` writes one JSON object per line: ``time`` (UTC, RFC 3339 with
milliseconds), ``level``, ``logger``, ``message``, ``correlationId`` (EdgeX's
``X-Correlation-ID`` of the request being served, when there is one), ``traceId``/``spanId``
(inside a traced span) and ``exception`` (a traceback, when logged with one). Log collectors
(Loki, Elasticsearch, CloudWatch) then index the fields without a parsing rule, and a line can
be joined with its trace.

The correlation id reaches the formatter through :data:`CORRELATION`, a context variable the
HTTP middleware sets per request; tasks a request starts inherit it, so a move finishing in
the background still logs its request's id.
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar

import orjson

from edgemeta.tracing import current_ids

CORRELATION: ContextVar[str] = ContextVar("edgemeta_correlation_id", default="")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record (with ``worker``, the index of a ``--workers N`` process)."""

    def __init__(self, worker: int | None = None) -> None:
        super().__init__()
        self.worker = worker

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        seconds = int(record.created)
        line: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.worker is not None:
            line["worker"] = self.worker
        cid = CORRELATION.get()
        if cid:
            line["correlationId"] = cid
        ids = current_ids()
        if ids is not None:
            line["traceId"], line["spanId"] = ids
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line).decode()


def configure(level: str, fmt: str = "text", worker: int | None = None) -> None:
    """Set up the root logger for ``serve``: ``fmt`` is ``text`` or ``json``; ``worker``
    tags each line with the index of one process of ``--workers N``."""
    handler = logging.StreamHandler()
    text = (
        TEXT_FORMAT if worker is None else TEXT_FORMAT.replace("%(name)s", f"%(name)s[w{worker}]")
    )
    handler.setFormatter(JsonFormatter(worker) if fmt == "json" else logging.Formatter(text))
    # As basicConfig always does: a root logger that has handlers already (an embedding
    # application's, pytest's) is left as it is.
    logging.basicConfig(level=level, handlers=[handler])


__all__ = ["CORRELATION", "JsonFormatter", "configure"]
