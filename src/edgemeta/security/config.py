"""From settings to an authenticator, and the refusal to serve a network without one."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from edgemeta.ports import Store
from edgemeta.security.authn import Authenticator
from edgemeta.security.tokens import TokenVerifier, load_pem_keys
from edgemeta.settings import Settings


class InsecureExposure(ValueError):
    """Authentication is off and the service would listen beyond the loopback interface."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine (``localhost``, 127/8, ``::1``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_exposure(settings: Settings) -> None:
    """Refuse auth off on a non-loopback address (or north broker) unless explicitly allowed."""
    exposed = settings.auth == "off" and not is_loopback(settings.host)
    if exposed and not settings.auth_allow_insecure_off:
        raise InsecureExposure(
            f"authentication is off (EDGEMETA_AUTH=off) and the service would listen on "
            f"{settings.host}, beyond this machine: anyone who reaches it could change "
            "everything. Turn authentication on (EDGEMETA_AUTH=on, docs/security.md), "
            "listen on 127.0.0.1, or set EDGEMETA_AUTH_ALLOW_INSECURE_OFF=true to accept it."
        )
    north = urlsplit(settings.north_mqtt_url).hostname if settings.north_mqtt_url else None
    north_exposed = settings.auth == "off" and north and not is_loopback(north)
    if north_exposed and not settings.auth_allow_insecure_off:
        raise InsecureExposure(
            f"authentication is off (EDGEMETA_AUTH=off) and commands from the north are "
            f"taken from the broker at {north} (EDGEMETA_NORTH_MQTT_URL): anyone who may "
            "publish there could command every device. Turn authentication on "
            "(EDGEMETA_AUTH=on), or set EDGEMETA_AUTH_ALLOW_INSECURE_OFF=true to accept it."
        )


def authenticator(settings: Settings, store: Store) -> Authenticator | None:
    """The authenticator the settings ask for (None when authentication is off)."""
    if settings.auth == "off":
        return None
    verifier = None
    if settings.auth_jwks_url or settings.auth_public_keys:
        verifier = TokenVerifier(
            issuer=settings.auth_issuer,
            audience=settings.auth_audience,
            jwks_url=settings.auth_jwks_url,
            static_keys=load_pem_keys(settings.auth_public_keys)
            if settings.auth_public_keys
            else (),
            roles_claim=settings.auth_roles_claim,
            service_claim=settings.auth_service_claim,
            clock_skew=settings.auth_clock_skew,
            min_refresh=settings.auth_jwks_min_refresh,
            max_age=settings.auth_jwks_max_age,
            cache_size=settings.auth_token_cache,
        )
    return Authenticator(
        store,
        verifier,
        apikey_cache_seconds=settings.auth_apikey_cache_seconds,
        cache_size=max(settings.auth_token_cache, 1),
    )
