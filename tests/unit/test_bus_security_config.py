"""Bus credentials and TLS options without a broker: settings, URL merging, redaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgemeta.bootstrap import config_document, data_config_document, open_bus
from edgemeta.bus.mqtt import MqttBus
from edgemeta.bus.nats import NatsBus
from edgemeta.bus.security import BusSecurity, endpoint
from edgemeta.settings import Settings, redact
from tests.support.securebrokers import make_pki


def mqtt(url: str, security: BusSecurity | None = None) -> tuple[str, int, str | None, bool]:
    ep = endpoint(url, security, plain="mqtt", secure="mqtts", plain_port=1883, secure_port=8883)
    return ep.host, ep.port, ep.username, ep.tls


def test_url_scheme_and_options_decide_tls_and_port(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    assert mqtt("mqtt://h") == ("h", 1883, None, False)
    assert mqtt("mqtts://h") == ("h", 8883, None, True)
    assert mqtt("mqtt://h", BusSecurity(tls=True)) == ("h", 8883, None, True)
    # Naming a CA turns TLS on: it never leaves the connection in clear by mistake.
    assert mqtt("mqtt://h:1999", BusSecurity(ca_file=pki.ca)) == ("h", 1999, None, True)
    assert mqtt("mqtt://u%40x:p@h") == ("h", 1883, "u@x", False)
    assert mqtt("mqtt://h", BusSecurity("u", "p")) == ("h", 1883, "u", False)


def test_contradictory_or_incomplete_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="twice"):
        mqtt("mqtt://a:b@h", BusSecurity("u", "p"))
    with pytest.raises(ValueError, match="both a certificate file and a key file"):
        BusSecurity(cert_file=tmp_path / "c.pem")
    with pytest.raises(ValueError, match="user name"):
        BusSecurity(password="p")
    with pytest.raises(ValueError, match="cannot read the bus CA file"):
        mqtt("mqtts://h", BusSecurity(ca_file=tmp_path / "missing.pem"))
    with pytest.raises(ValueError, match="mqtt:// or mqtts://") as info:
        mqtt("nats://user:secret@h")
    assert "secret" not in str(info.value)


def test_security_never_shows_the_password() -> None:
    sec = BusSecurity("u", "hunter2")
    assert "hunter2" not in repr(sec)
    bus = MqttBus("mqtts://u:hunter2@h", security=None)
    assert "hunter2" not in repr(bus.endpoint) and "hunter2" not in bus.description
    nats = NatsBus("tls://u:hunter2@h")
    assert "hunter2" not in nats.url and nats.endpoint.tls
    assert nats.description == "nats server h:4222 (tls)"


def test_settings_password_file_and_conflicts(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-a-file\n")
    s = Settings(bus_username="edge", bus_password_file=secret, bus_tls=True)
    assert s.bus_security() == BusSecurity("edge", "from-a-file", tls=True)
    with pytest.raises(ValueError, match="both set"):
        Settings(bus_username="edge", bus_password="x", bus_password_file=secret)
    with pytest.raises(ValueError, match="EDGEMETA_BUS_CERT_FILE and EDGEMETA_BUS_KEY_FILE"):
        Settings(bus_cert_file=secret)
    with pytest.raises(ValueError, match="needs EDGEMETA_BUS_USERNAME"):
        Settings(bus_password="x")
    with pytest.raises(ValueError, match="cannot read EDGEMETA_BUS_PASSWORD_FILE"):
        Settings(bus_username="edge", bus_password_file=tmp_path / "nope").bus_security()


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EDGEMETA_BUS_USERNAME", "edge")
    monkeypatch.setenv("EDGEMETA_BUS_PASSWORD", "env-secret")
    monkeypatch.setenv("EDGEMETA_BUS_TLS", "true")
    sec = Settings().bus_security()
    assert (sec.username, sec.password, sec.uses_tls) == ("edge", "env-secret", True)


def test_redacted_everywhere_config_shows_it(tmp_path: Path) -> None:
    assert redact("mqtts://u:p%40ss@h:8883") == "mqtts://u:***@h:8883"
    assert redact("nats://s3cr3t-token@h:4222") == "nats://***@h:4222"
    assert redact("tls://u:p@h") == "tls://u:***@h"
    assert redact("mqtt://justuser@h") == "mqtt://justuser@h"
    assert redact("mqtt://h") == "mqtt://h"
    s = Settings(
        database_url=f"sqlite:///{tmp_path / 'x.db'}",
        bus_url="mqtt://u:topsecret@h",
        bus_ca_file=tmp_path / "ca.pem",
    )
    for doc in (config_document(s), data_config_document(s)):
        assert "topsecret" not in str(doc)
        assert doc["MessageBus"]["Url"] == "mqtt://u:***@h"
        assert doc["MessageBus"]["Security"]["Tls"] is True


def test_open_bus_knows_the_tls_schemes(tmp_path: Path) -> None:
    s = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}")
    assert isinstance(open_bus("mqtts://h", s), MqttBus)
    assert isinstance(open_bus("tls://h", s), NatsBus)
    with pytest.raises(ValueError, match="mqtts://"):
        open_bus("amqp://h", s)
