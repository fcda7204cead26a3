"""A tiny real token issuer for the tests: RSA and EC keys made with ``cryptography``, a JWKS
document served over HTTP by uvicorn in its own thread, tokens signed with PyJWT, and key
rotation while it runs."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import jwt
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.e2e.procs import free_port

ISSUER = "https://issuer.test/realms/edge"
AUDIENCE = "edgemeta"


class Issuer:
    """Signs tokens with its current key and serves the public halves as a JWKS."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}  # kid -> private key, the served set
        self.kid = ""
        self.fetches = 0
        self.rotate()
        self.port = free_port()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def jwks_url(self) -> str:
        """Where the key set is served."""
        return f"http://127.0.0.1:{self.port}/jwks"

    def rotate(self, *, keep_old: bool = True, kind: str = "rsa") -> str:
        """A new signing key (its kid is returned); the old ones stay served unless told."""
        private: Any = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if kind == "rsa"
            else ec.generate_private_key(ec.SECP256R1())
        )
        kid = f"{kind}-{uuid.uuid4().hex[:8]}"
        if not keep_old:
            self.keys.clear()
        self.keys[kid] = private
        self.kid = kid
        return kid

    def public_pem(self, kid: str | None = None) -> bytes:
        """The PEM of a key's public half."""
        pub = self.keys[kid or self.kid].public_key()
        return pub.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwks(self) -> dict[str, Any]:
        """The served key set."""
        out = []
        for kid, private in self.keys.items():
            pub = private.public_key()
            if isinstance(pub, rsa.RSAPublicKey):
                jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(pub))
                jwk["alg"] = "RS256"
            else:
                jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(pub))
                jwk["alg"] = "ES256"
            jwk.update(kid=kid, use="sig")
            out.append(jwk)
        return {"keys": out}

    def token(
        self,
        sub: str = "alice",
        roles: list[str] | str | None = None,
        *,
        kid: str | None = None,
        lifetime: float = 300,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A token signed with the current key (or ``kid``'s)."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": sub,
            "iat": now,
            "exp": now + int(lifetime),
            "roles": roles if roles is not None else ["read"],
        }
        payload.update(claims)
        kid = kid or self.kid
        private = self.keys[kid]
        alg = "RS256" if isinstance(private, rsa.RSAPrivateKey) else "ES256"
        return jwt.encode(payload, private, algorithm=alg, headers={"kid": kid, **(headers or {})})

    def start(self) -> None:
        """Serve the JWKS from a thread (its own event loop)."""

        async def jwks(request: Request) -> JSONResponse:
            self.fetches += 1
            return JSONResponse(self.jwks())

        app = Starlette(routes=[Route("/jwks", jwks)])
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test issuer did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
