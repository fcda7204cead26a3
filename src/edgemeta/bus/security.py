"""Broker credentials and TLS, shared by the MQTT and NATS adapters.

:class:`BusSecurity` is what a bus connection is told: a user name and password, whether to
use TLS, the CA that signs the broker's certificate (the system's trust store without one),
and a client certificate and key for brokers that ask for one. The broker's certificate must
name the host in the bus URL. The same value goes to every
connection edgemeta opens (the service's bus, core-data's ingest) and to the SDK's.

:func:`endpoint` merges it with the bus URL: credentials may also sit in the URL
(``mqtt://user:pass@host``), and the schemes ``mqtts://`` and (NATS) ``tls://`` turn TLS on.
The result, an :class:`Endpoint`, is what an adapter connects with; it never prints the
password.

:class:`BrokerRefused` is the broker saying no in a way that retrying will not change (wrong
credentials, an untrusted certificate): ``start`` raises it at once instead of retrying, with
a message that says what to check. :func:`mqtt_refusal` and :func:`nats_refusal` recognise
those failures among a client library's errors.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from edgemeta.domain.errors import ServiceUnavailable

__all__ = ["BrokerRefused", "BusSecurity", "Endpoint", "endpoint", "mqtt_refusal", "nats_refusal"]

# MQTT CONNACK refusals that mean "your credentials", 3.1.1 return codes and MQTT 5 reason
# codes (paho maps 4 to 134 and 5 to 135 in MQTT 5 terms).
_MQTT_AUTH_CODES = {
    4: "bad user name or password",
    5: "not authorised",
    134: "bad user name or password",
    135: "not authorised",
    138: "banned",
    140: "bad authentication method",
}


class BrokerRefused(ServiceUnavailable):
    """The broker refused us for a reason retrying will not fix (credentials, certificates)."""


@dataclass(frozen=True)
class BusSecurity:
    """How to authenticate to the broker and whether (and how) to use TLS.

    ``tls`` is implied by a CA file or a client certificate, so that naming a CA can never
    leave the connection in clear by mistake.
    """

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("a client certificate needs both a certificate file and a key file")
        if self.password is not None and not self.username:
            raise ValueError("a bus password needs a bus user name")

    @property
    def uses_tls(self) -> bool:
        """Whether the connection is to be encrypted."""
        return self.tls or self.ca_file is not None or self.cert_file is not None

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that verifies the broker (hostname included) against the CA file,
        or the system's trust store without one, and presents the client certificate if any.

        Raises ValueError naming the file when one cannot be read.
        """
        try:
            context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"cannot read the bus CA file {self.ca_file}: {exc}") from None
        if self.cert_file is not None:
            try:
                context.load_cert_chain(str(self.cert_file), str(self.key_file))
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(
                    f"cannot load the bus client certificate {self.cert_file} with key "
                    f"{self.key_file}: {exc}"
                ) from None
        return context


@dataclass(frozen=True)
class Endpoint:
    """Where and how one bus connects: the URL and the security options merged."""

    host: str
    port: int
    username: str | None
    password: str | None = field(repr=False)
    tls: bool
    context: ssl.SSLContext | None = field(repr=False)

    @property
    def address(self) -> str:
        """``host:port`` (no credentials), for messages."""
        return f"{self.host}:{self.port}"


def endpoint(
    url: str,
    security: BusSecurity | None,
    *,
    plain: str,
    secure: str,
    plain_port: int,
    secure_port: int,
) -> Endpoint:
    """Merge ``url`` (scheme ``plain`` or ``secure``) with ``security``.

    Credentials may come from the URL or from ``security``, not both (which one would win is
    a guess an operator should not have to make). Reads the TLS files now, so a wrong path
    fails at start, not at the first reconnect.
    """
    sec = security or BusSecurity()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in (plain, secure) or not parts.hostname:
        raise ValueError(f"not a {plain}:// or {secure}:// url with a host: {_safe(url)!r}")
    url_user = unquote(parts.username) if parts.username else None
    url_password = unquote(parts.password) if parts.password is not None else None
    if url_user is not None and sec.username is not None:
        raise ValueError(
            "bus credentials are given twice: in the bus URL and as a user name "
            "(EDGEMETA_BUS_USERNAME); keep one"
        )
    username = url_user if url_user is not None else sec.username
    password = url_password if url_user is not None else sec.password
    tls = scheme == secure or sec.uses_tls
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"bad port in the bus URL {_safe(url)!r}") from None
    return Endpoint(
        host=parts.hostname,
        port=port or (secure_port if tls else plain_port),
        username=username,
        password=password,
        tls=tls,
        context=sec.ssl_context() if tls else None,
    )


def _safe(url: str) -> str:
    """``url`` without anything before an ``@`` (credentials), for error messages."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"


def _tls_refusal(what: str, address: str, text: str) -> str | None:
    """What to check when a TLS handshake failed with ``text`` (None: not a TLS failure)."""
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return (
            f"{what} {address} presented a certificate edgemeta does not trust ({text}); check "
            "EDGEMETA_BUS_CA_FILE names the CA that signed the broker's certificate and that "
            "the certificate is for the host in EDGEMETA_BUS_URL"
        )
    if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text:
        return (
            f"{what} {address} did not answer TLS ({text}); check that the port in "
            "EDGEMETA_BUS_URL is the broker's TLS listener, or turn TLS off"
        )
    if text.startswith("[SSL") or ("alert" in text.lower() and "SSL" in text):
        return (
            f"TLS handshake with {what} {address} failed ({text}); check "
            "EDGEMETA_BUS_CERT_FILE and EDGEMETA_BUS_KEY_FILE if the broker asks for a client "
            "certificate, and EDGEMETA_BUS_CA_FILE"
        )
    return None


def mqtt_refusal(exc: BaseException, address: str) -> str | None:
    """A message for an aiomqtt connection error that retrying will not fix, else None."""
    rc = getattr(exc, "rc", None)
    code = getattr(rc, "value", rc)
    if isinstance(code, int) and code in _MQTT_AUTH_CODES and _is_connect_error(exc):
        return (
            f"mqtt broker {address} refused the connection: {_MQTT_AUTH_CODES[code]}; check "
            "EDGEMETA_BUS_USERNAME and EDGEMETA_BUS_PASSWORD (or _PASSWORD_FILE, or the "
            "credentials in EDGEMETA_BUS_URL) against the broker's password file and ACLs"
        )
    # aiomqtt turns a failed TLS handshake into a plain MqttError with the SSL error's text.
    return _tls_refusal("mqtt broker", address, str(exc))


def _is_connect_error(exc: BaseException) -> bool:
    import aiomqtt.exceptions

    return isinstance(exc, aiomqtt.exceptions.MqttConnectError)


def nats_refusal(exc: BaseException, address: str) -> str | None:
    """A message for a nats-py connection error that retrying will not fix, else None."""
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if "authorization violation" in lowered or type(exc).__name__ == "AuthorizationError":
        return (
            f"nats server {address} refused the connection: authorization violation; check "
            "EDGEMETA_BUS_USERNAME and EDGEMETA_BUS_PASSWORD (or _PASSWORD_FILE, or the "
            "credentials or token in EDGEMETA_BUS_URL) against the server's authorization block"
        )
    if "does not require tls" in lowered:
        return text
    if isinstance(exc, ssl.SSLError):
        return _tls_refusal("nats server", address, text) or (
            f"TLS handshake with nats server {address} failed ({text})"
        )
    return None
