"""Credentials for edgemeta's API from Python: a bearer JWT or an API key as a header."""

from __future__ import annotations


def auth_headers(token: str | None = None, api_key: str | None = None) -> dict[str, str]:
    """The header that carries a credential: ``Authorization: Bearer <token>`` for a JWT (or
    an API key given as a token), ``X-API-Key`` for an API key; none without either."""
    if token and api_key:
        raise ValueError("give a token or an API key, not both")
    if token:
        return {"Authorization": f"Bearer {token}"}
    if api_key:
        return {"X-API-Key": api_key}
    return {}
