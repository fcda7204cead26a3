"""Routes, one module per resource: each handler is a named module-level function
``handler(api, request)``, and ``routes(api) -> list[Route]`` binds them to their paths.

A handler reads the request (a DTO from :mod:`edgemeta.documents`, path and query), calls one
use case and answers; it holds no rule and picks no transaction.
"""
