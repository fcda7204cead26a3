"""TLS for the HTTP servers: the server's SSL context, and the verified client's subject.

``EDGEMETA_TLS_CERT_FILE`` and ``EDGEMETA_TLS_KEY_FILE`` turn HTTPS on for every port
``edgemeta serve`` opens; ``EDGEMETA_TLS_CLIENT_CA_FILE`` makes it mutual TLS: the handshake
is refused unless the client presents a certificate that CA signed. The context is the stdlib's
(OpenSSL's) with TLS 1.2 as the floor; nothing here does cryptography of its own.

When a client certificate was verified, the protocol class (``api.http_protocol``) puts
``{"client_subject": "<RFC 4514 subject>"}`` in ``scope["extensions"]["tls"]`` of every
request of that connection; :func:`client_subject` reads it back. Today the subject is only
logged (a refused request's log line names it); it is not mapped to a principal.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509


class TlsConfigError(ValueError):
    """The TLS settings cannot be used (a file is missing, unreadable or not what it should be).

    A ValueError, like the other refusals to start, so ``edgemeta serve`` reports it and exits.
    """


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The files TLS is configured from (all already checked readable by :func:`files`)."""

    cert: Path
    key: Path
    client_ca: Path | None = None


def files(cert: Path | None, key: Path | None, client_ca: Path | None) -> TlsFiles | None:
    """The TLS files, or None when TLS is off; refuse half a configuration."""
    if cert is None and key is None:
        if client_ca is not None:
            raise TlsConfigError(
                "EDGEMETA_TLS_CLIENT_CA_FILE needs EDGEMETA_TLS_CERT_FILE and EDGEMETA_TLS_KEY_FILE"
            )
        return None
    if cert is None or key is None:
        given, missing = (
            ("EDGEMETA_TLS_CERT_FILE", "EDGEMETA_TLS_KEY_FILE")
            if key is None
            else ("EDGEMETA_TLS_KEY_FILE", "EDGEMETA_TLS_CERT_FILE")
        )
        raise TlsConfigError(f"{given} is set but {missing} is not: TLS needs both")
    return TlsFiles(cert=cert, key=key, client_ca=client_ca)


def _readable(setting: str, path: Path) -> None:
    try:
        with path.open("rb") as f:
            f.read(1)
    except OSError as exc:
        raise TlsConfigError(f"{setting} {path}: cannot read it ({exc.strerror or exc})") from None


def _no_password() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key's password
    # and hang a service started without one; an empty answer makes the load fail instead.
    return b""


def server_context(tls: TlsFiles) -> ssl.SSLContext:
    """The SSL context every HTTP server of ``edgemeta serve`` listens with."""
    _readable("EDGEMETA_TLS_CERT_FILE", tls.cert)
    _readable("EDGEMETA_TLS_KEY_FILE", tls.key)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # Renegotiation (TLS 1.2) lets a client make the server redo the expensive part at will.
    ctx.options |= ssl.OP_NO_RENEGOTIATION
    try:
        ctx.load_cert_chain(tls.cert, tls.key, password=_no_password)
    except (ssl.SSLError, ValueError) as exc:
        raise TlsConfigError(
            f"EDGEMETA_TLS_CERT_FILE {tls.cert} / EDGEMETA_TLS_KEY_FILE {tls.key}: not a usable "
            f"PEM certificate chain and matching unencrypted private key ({exc})"
        ) from None
    if tls.client_ca is not None:
        _readable("EDGEMETA_TLS_CLIENT_CA_FILE", tls.client_ca)
        try:
            ctx.load_verify_locations(cafile=tls.client_ca)
        except ssl.SSLError as exc:
            raise TlsConfigError(
                f"EDGEMETA_TLS_CLIENT_CA_FILE {tls.client_ca}: not PEM CA certificates ({exc})"
            ) from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def peer_certificate(transport: Any) -> bytes | None:
    """The DER certificate the peer of ``transport`` presented in the handshake, if any."""
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der: bytes | None = ssl_object.getpeercert(binary_form=True)
    return der or None


def peer_subject(transport: Any) -> str | None:
    """The RFC 4514 subject of the certificate the peer of ``transport`` presented, if any.

    With a client CA configured the handshake has already verified it; without one the
    server does not ask for a certificate, so there is none.
    """
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    subject: str = x509.load_der_x509_certificate(der).subject.rfc4514_string()
    return subject


def client_certificate(scope: Any) -> bytes | None:
    """The verified TLS client certificate (DER) of an ASGI request, if there was one: the
    handshake proved the client holds its key (X.509 registration by mutual TLS)."""
    tls = (scope.get("extensions") or {}).get("tls") or {}
    der = tls.get("client_certificate")
    return der if isinstance(der, bytes) else None


def client_subject(scope: Any) -> str | None:
    """The verified TLS client certificate's subject of an ASGI request, if there was one."""
    tls = (scope.get("extensions") or {}).get("tls") or {}
    subject = tls.get("client_subject")
    return subject if isinstance(subject, str) else None
