"""The authentication and authorization gate: one ASGI middleware, mounted on every route.

``create_app`` and ``create_data_app`` wrap each route's endpoint in an :class:`AuthGate`
holding that route's rule from ``edgemeta.security.roles.TABLE`` (looked up once, when the
app is built: no per-request matching of route templates). The gate

- lets open routes (``ping``, ``health``, the OpenAPI document) through without a credential;
- answers **401** in the EdgeX envelope with ``WWW-Authenticate: Bearer`` when the credential
  is missing or refused, and **403** when the caller lacks every role the route accepts, or
  the route is missing from the table (deny by default, even with authentication off) - in
  both cases before the endpoint runs, so a refused request changes nothing;
- otherwise puts the :class:`~edgemeta.security.principal.Principal` in
  ``scope["state"]["principal"]`` (read with ``principal.current``) and makes it the acting
  principal of the task (``principal.acting``) while the endpoint runs.

Unknown paths and methods still answer 404/405 without a credential: there is nothing behind
them to protect, and the route list is public (the OpenAPI document).
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from edgemeta.api.responses import error
from edgemeta.security.authn import Authenticator, NotAuthenticated
from edgemeta.security.principal import OPEN, Principal, act_as, reset
from edgemeta.security.roles import Rule
from edgemeta.security.tls import client_subject
from edgemeta.security.tokens import IssuerUnavailable

log = logging.getLogger("edgemeta.security")

REALM = 'Bearer realm="edgemeta"'
_ANONYMOUS = Principal(subject="anonymous")


class AuthGate:
    """Authenticate and authorize one route's requests (see the module docstring)."""

    def __init__(
        self, app: ASGIApp, *, rule: Rule, authenticator: Authenticator | None, label: str
    ) -> None:
        self.app = app
        self.rule = rule
        self.authenticator = authenticator
        self.label = label

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The route template, for the server span's name and the metrics (edgemeta.api.observe).
        scope.setdefault("state", {})["route"] = self.label
        rule = self.rule
        if rule.deny:
            await error(403, f"{self.label} is not in the role table; refused")(
                scope, receive, send
            )
            return
        auth = self.authenticator
        if auth is None:
            principal = OPEN
        elif rule.open:
            principal = _ANONYMOUS
        else:
            authorization = api_key = None
            for key, value in scope["headers"]:
                if key == b"authorization":
                    authorization = value.decode("latin-1")
                elif key == b"x-api-key":
                    api_key = value.decode("latin-1")
            hit = auth.cached(authorization) if api_key is None else None
            try:
                principal = hit or await auth.authenticate(authorization, api_key)
            except NotAuthenticated as exc:
                tls_client = client_subject(scope)
                if tls_client:
                    log.info("refused %s to TLS client %s: %s", self.label, tls_client, exc.message)
                challenge = REALM + (', error="invalid_token"' if exc.presented else "")
                response = error(401, exc.message)
                response.headers["WWW-Authenticate"] = challenge
                await response(scope, receive, send)
                return
            except IssuerUnavailable as exc:
                await error(503, str(exc))(scope, receive, send)
                return
            if not rule.allows(principal.roles):
                tls_client = client_subject(scope)
                log.info(
                    "refused %s to %s (roles %s)%s",
                    self.label,
                    principal.subject,
                    sorted(principal.roles),
                    f" over TLS as {tls_client}" if tls_client else "",
                )
                response = error(
                    403,
                    f"{self.label} needs one of the roles {', '.join(sorted(rule.roles))}; "
                    f"{principal.subject} has {', '.join(sorted(principal.roles)) or 'none'}",
                )
                response.headers["WWW-Authenticate"] = REALM + ', error="insufficient_scope"'
                await response(scope, receive, send)
                return
        scope.setdefault("state", {})["principal"] = principal
        token = act_as(principal)
        try:
            await self.app(scope, receive, send)
        finally:
            reset(token)
