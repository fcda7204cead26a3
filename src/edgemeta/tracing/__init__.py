"""OpenTelemetry tracing, per service, at no cost when it is off (``EDGEMETA_TRACING``).

A :class:`Tracing` belongs to one :class:`~edgemeta.bootstrap.Service` (its own
``TracerProvider``, not the process-global one, so two services in one process, as in tests,
do not share spans). Off, which is the default, nothing of OpenTelemetry is imported and every
call here is one attribute test; on, :mod:`edgemeta.tracing.sdk` builds the provider with the
configured exporter and a parent-based ratio sampler.

Context crosses process boundaries as W3C trace context: the ``traceparent`` (and
``tracestate``) HTTP headers on requests, and a ``traceparent`` field in the bus's
MessageEnvelope (system events, validation and release requests and their answers; EdgeX's
decoders ignore unknown fields). :func:`current_traceparent` is what the outbox stores with
each event so that the relay, which publishes later, can continue the trace that wrote it.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

    from edgemeta.settings import Settings

Kind = Literal["internal", "server", "client", "producer", "consumer"]

# Whether any Tracing in this process is on: until one is, nothing here looks for a current
# span (and OpenTelemetry is not even imported).
_ON = False
_NULL: AbstractContextManager[None] = contextlib.nullcontext()


class Tracing:
    """A service's tracer; :meth:`off` (no provider) makes every span a no-op."""

    __slots__ = ("enabled", "provider", "tracer")

    def __init__(self, provider: TracerProvider | None = None) -> None:
        global _ON
        self.provider = provider
        self.enabled = provider is not None
        self.tracer: Tracer | None = None
        if provider is not None:
            _ON = True
            self.tracer = provider.get_tracer("edgemeta")

    @classmethod
    def off(cls) -> Tracing:
        """Tracing switched off (shared: it holds nothing)."""
        return _OFF

    def span(
        self,
        name: str,
        *,
        kind: Kind = "internal",
        attributes: Mapping[str, Any] | None = None,
        parent: str = "",
        in_trace_only: bool = False,
    ) -> AbstractContextManager[Any]:
        """A span made current for the ``with`` block (the block gets the span, or None when
        off). ``parent``: a W3C traceparent to continue instead of the current context;
        ``in_trace_only``: no span unless one is already current (work done in the
        background would otherwise start a trace of its own at every poll)."""
        tracer = self.tracer
        if tracer is None:
            return _NULL
        from opentelemetry import trace

        if in_trace_only and not trace.get_current_span().get_span_context().is_valid:
            return _NULL
        ctx = context_of(parent) if parent else None
        # The SDK copies the attributes into the span's own bounded mapping: no copy here.
        return tracer.start_as_current_span(
            name, context=ctx, kind=_kind(kind), attributes=attributes
        )

    def start(
        self,
        name: str,
        *,
        kind: Kind = "internal",
        attributes: Mapping[str, Any] | None = None,
        parent: Context | None = None,
    ) -> Span | None:
        """A span that is not made current (ended by the caller); None when off."""
        if self.tracer is None:
            return None
        return self.tracer.start_span(name, context=parent, kind=_kind(kind), attributes=attributes)

    def shutdown(self) -> None:
        """Export what is buffered and stop the exporter."""
        if self.provider is not None:
            self.provider.shutdown()


_OFF = Tracing()


def _kind(kind: Kind) -> Any:
    from opentelemetry.trace import SpanKind

    return SpanKind[kind.upper()]


def build_tracing(settings: Settings, exporter: SpanExporter | None = None) -> Tracing:
    """The service's tracing as the settings say (``exporter``: export there instead, span by
    span; for tests and embedding)."""
    if settings.tracing == "off" and exporter is None:
        return _OFF
    from edgemeta.tracing.sdk import make_provider  # the SDK only when tracing is on

    return Tracing(
        make_provider(
            mode=settings.tracing,
            endpoint=settings.otlp_endpoint,
            ratio=settings.trace_sample_ratio,
            service_name=settings.tracing_service_name,
            exporter=exporter,
        )
    )


def traceparent_of(span: Span | None) -> str:
    """The W3C traceparent naming ``span`` ("" for none, or an invalid one)."""
    if span is None:
        return ""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return ""
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def current_traceparent() -> str:
    """The traceparent of the current span ("" when tracing is off or no span is current)."""
    if not _ON:
        return ""
    from opentelemetry import trace

    return traceparent_of(trace.get_current_span())


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) in hex of the current span, for log lines; None without one."""
    if not _ON:
        return None
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


def context_of(traceparent: str, tracestate: str = "") -> Context | None:
    """The context a W3C ``traceparent`` (and ``tracestate``) names; None if malformed."""
    if not traceparent:
        return None
    from opentelemetry import trace

    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    ctx = _propagator().extract(carrier)
    # The propagator leaves a malformed header out: no valid span in what it returns.
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def sampled(traceparent: str) -> bool:
    """Whether a well-formed W3C ``traceparent`` says its trace is recorded (the sampled bit
    of its last field, the trace flags). Lets work that would only continue the trace skip
    building a context and a span that the parent-based sampler would drop anyway."""
    try:
        return bool(int(traceparent[-2:], 16) & 1)
    except ValueError:
        return False


@functools.cache
def _propagator() -> Any:
    # Stateless: one for the process instead of one per header parsed.
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator()


__all__ = [
    "Kind",
    "Tracing",
    "build_tracing",
    "context_of",
    "current_ids",
    "current_traceparent",
    "sampled",
    "traceparent_of",
]
