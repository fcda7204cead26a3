"""The OpenTelemetry SDK side of :mod:`edgemeta.tracing`, imported only when tracing is on.

One ``TracerProvider`` per service: resource ``service.name`` (``core-metadata`` unless
``EDGEMETA_TRACING_SERVICE_NAME`` says otherwise), a parent-based sampler (an incoming sampled
traceparent is always followed; a new trace is sampled at ``EDGEMETA_TRACE_SAMPLE_RATIO``), and
a batching exporter: OTLP over HTTP/protobuf to ``EDGEMETA_OTLP_ENDPOINT``, or the console.
Batching keeps the export off the request path: spans are queued, and a background thread
sends them (every few seconds, or at 512 spans).
"""

from __future__ import annotations

from opentelemetry.sdk.resources import Attributes, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased


def make_provider(
    *,
    mode: str,
    endpoint: str,
    ratio: float,
    service_name: str,
    exporter: SpanExporter | None = None,
) -> TracerProvider:
    """A provider exporting as ``mode`` says (``otlp`` or ``console``), or to ``exporter``
    span by span (synchronously: a test sees a span as soon as it ends)."""
    resource = Resource.create({"service.name": service_name})
    provider = TracerProvider(
        resource=_HashedOnce(dict(resource.attributes), resource.schema_url),
        sampler=ParentBased(TraceIdRatioBased(ratio)),
    )
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif mode == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    elif mode == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    return provider


class _HashedOnce(Resource):
    """The provider's resource, hashed once.

    The OTLP encoder groups every span it exports by resource (a dictionary keyed by it), and
    the SDK's ``Resource.__hash__`` serialises all the attributes to JSON each time: about 4 µs
    of every span's ~30 µs of encoding here. A resource never changes once made (its
    attributes are an immutable mapping), so the hash is taken once.
    """

    def __init__(self, attributes: Attributes, schema_url: str | None = None) -> None:
        super().__init__(attributes, schema_url)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash
