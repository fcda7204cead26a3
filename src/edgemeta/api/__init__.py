"""The HTTP API: the EdgeX v3 routes of core-metadata and core-data, plus edgemeta's own.

- :mod:`~edgemeta.api.app`: the Starlette apps, middleware (correlation id, size limits)
- :mod:`~edgemeta.api.routes`: one module per resource, named handlers
- :mod:`~edgemeta.api.handlers`: what every handler shares (context, batches, errors)
- :mod:`~edgemeta.api.errors`, :mod:`~edgemeta.api.responses`: the error table, the envelope
- :mod:`~edgemeta.api.body`, :mod:`~edgemeta.api.query`, :mod:`~edgemeta.api.yaml_profile`:
  reading bodies, query strings and profile uploads
- :mod:`~edgemeta.api.stream`: the system-event stream that follows the outbox
- ``openapi.yaml``: every route (checked by ``tests/api/test_openapi.py``)

Request and response shapes are not here: they are in :mod:`edgemeta.documents`. Imports:
the use cases, the documents, the domain, the ports (and :mod:`edgemeta.security`). Imported
by :mod:`edgemeta.bootstrap` only.
"""
