"""X.509 registration by mutual TLS, through a real TLS handshake on a loopback port: the
handshake proves the device holds its certificate's key, so the registration carries its chain
and no nonce signature; a chain whose leaf is not the handshake's certificate is refused."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx

from tests.security.test_tls import client_ctx, serve_tls, wait_ready
from tests.support.pki import Pki


def _post(client: httpx.Client, base: str, path: str, items: list[dict[str, Any]]) -> Any:
    r = client.post(f"{base}{path}", json=items)
    assert r.status_code == 207 and r.json()[0]["statusCode"] == 201, r.text
    return r.json()


def _registration(rid: str, chain_file: Path) -> dict[str, Any]:
    chain = [chain_file.read_text()]
    return {
        "apiVersion": "v3",
        "registration": {"registrationId": rid, "attestation": {"type": "x509", "chain": chain}},
    }


def test_registration_over_mutual_tls_needs_no_signature(tmp_path: Path, pki: Pki) -> None:
    # The client CA of the TLS port is also the CA the group enrolment names.
    p, _ = serve_tls(tmp_path, pki, EDGEMETA_TLS_CLIENT_CA_FILE=str(pki.ca.cert_file))
    base = f"https://127.0.0.1:{p.port}/api/v3"
    device: ssl.SSLContext = client_ctx(pki, pki.client)  # CN=ds-virtual
    try:
        wait_ready(p, base, device)
        with httpx.Client(verify=device, timeout=10) as c:
            _post(
                c,
                base,
                "/deviceservice",
                [
                    {
                        "apiVersion": "v3",
                        "service": {
                            "name": "gw",
                            "baseAddress": "http://127.0.0.1:1",
                            "adminState": "UNLOCKED",
                        },
                    }
                ],
            )
            profile = {"apiVersion": "v3", "profile": {"name": "prof", "deviceResources": []}}
            r = c.post(f"{base}/deviceprofile", json=[profile])
            assert r.json()[0]["statusCode"] == 201, r.text
            enrolment = {
                "name": "site-ca",
                "kind": "group",
                "allocation": {"policy": "static", "services": [{"name": "gw"}]},
                "initialState": {"profileName": "prof"},
                "attestation": {
                    "type": "x509",
                    "caCertificates": [pki.ca.cert_file.read_text()],
                },
            }
            _post(c, base, "/enrollment", [{"apiVersion": "v3", "enrollment": enrolment}])

            # Another certificate's chain over this handshake: refused, nothing created.
            r = c.post(
                f"{base}/registration", json=_registration("edgemeta-server", pki.server.cert)
            )
            assert r.status_code == 401, r.text
            assert c.get(f"{base}/device/name/edgemeta-server").status_code == 404

            r = c.post(f"{base}/registration", json=_registration("ds-virtual", pki.client.cert))
            assert r.status_code == 200, r.text
            record = r.json()["registration"]
            assert record["assignedService"] == "gw"
            assert record["attestation"]["type"] == "x509"
            assert record["attestation"]["proof"] == "tls"
            device_doc = c.get(f"{base}/device/name/ds-virtual").json()["device"]
            assert device_doc["serviceName"] == "gw"
    finally:
        p.stop()


def test_without_mutual_tls_a_chain_alone_is_refused(tmp_path: Path, pki: Pki) -> None:
    p, _ = serve_tls(tmp_path, pki)  # TLS, but no client certificates asked for
    base = f"https://127.0.0.1:{p.port}/api/v3"
    server_only = client_ctx(pki)
    try:
        wait_ready(p, base, server_only)
        with httpx.Client(verify=server_only, timeout=10) as c:
            r = c.post(f"{base}/registration", json=_registration("ds-virtual", pki.client.cert))
        assert r.status_code == 401, r.text
        assert "mutual TLS" in r.json()["message"]
    finally:
        p.stop()
