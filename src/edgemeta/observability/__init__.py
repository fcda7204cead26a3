"""Observability adapters: Prometheus metrics (``metrics``)."""
