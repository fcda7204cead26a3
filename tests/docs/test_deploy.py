"""The deployment recipe (deploy/, Containerfile, docs/operations.md) holds together: the
files parse, name real settings, real metrics and real routes, and every alert's runbook
link lands on a section of docs/operations.md. (The image itself is not built here.)"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from edgemeta.security.roles import METADATA, rule_for
from edgemeta.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()

# The metrics the alert rules may use (docs/metrics.md describes them).
METRICS = {
    "edgemeta_outbox_backlog",
    "edgemeta_outbox_oldest_age_seconds",
    "edgemeta_relay_lag_seconds",
    "edgemeta_bus_connected",
    "edgemeta_bus_reconnects_total",
    "edgemeta_move_ack_timeouts_total",
    "edgemeta_move_rollbacks_total",
    "edgemeta_moves_in_flight",
    "edgemeta_registrations_total",
    "edgemeta_ingest_refused_total",
    "edgemeta_http_requests_total",
    "edgemeta_http_request_duration_seconds_bucket",
    "edgemeta_db_transaction_duration_seconds_bucket",
}


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors of a document's headings."""
    found = set()
    for heading in re.findall(r"^#+ (.+)$", markdown, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def setting_fields() -> set[str]:
    return {f"EDGEMETA_{name.upper()}" for name in Settings.model_fields}


def test_compose_parses_and_wires_real_settings() -> None:
    doc: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = doc["services"]
    assert {"postgres", "mosquitto", "edgemeta"} <= services.keys()
    edgemeta = services["edgemeta"]
    env = edgemeta["environment"]
    assert set(env) <= setting_fields(), set(env) - setting_fields()
    assert env["EDGEMETA_DATABASE_URL"].startswith("postgresql://")
    assert "@postgres:5432/" in env["EDGEMETA_DATABASE_URL"]
    assert env["EDGEMETA_BUS_URL"] == "mqtt://mosquitto:1883"
    assert env["EDGEMETA_AUTH"] == "on"
    assert edgemeta["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert (ROOT / edgemeta["build"]["context"].replace("..", ".")).is_dir()
    assert edgemeta["build"]["dockerfile"] == "Containerfile"
    mounted = services["mosquitto"]["volumes"][0].split(":")[0]
    assert (DEPLOY / mounted).is_file()


def test_alert_rules_parse_use_known_metrics_and_link_their_runbook() -> None:
    doc: dict[str, Any] = yaml.safe_load((DEPLOY / "alerts.yaml").read_text())
    rules = [rule for group in doc["groups"] for rule in group["rules"]]
    assert len(rules) >= 10
    used: set[str] = set()
    sections = anchors(OPERATIONS)
    for rule in rules:
        assert rule["alert"].startswith("Edgemeta"), rule
        assert rule["labels"]["severity"] in {"warning", "critical"}
        names = set(re.findall(r"\bedgemeta_\w+", rule["expr"]))
        assert names <= METRICS, (rule["alert"], names - METRICS)
        used |= names
        runbook = rule["annotations"]["runbook"]
        page, _, anchor = runbook.partition("#")
        assert page == "docs/operations.md" and anchor in sections, runbook
        assert anchor == rule["alert"].removeprefix("Edgemeta").lower()
    # Every metric the brief names has a rule (the histograms through their buckets).
    assert used == METRICS


def unit_keys(text: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit's sections and keys (a key may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not key=value: {line!r}"
        current.setdefault(key, []).append(value)
    return sections


def test_systemd_unit_is_hardened_and_runs_serve() -> None:
    unit = unit_keys((DEPLOY / "edgemeta.service").read_text())
    assert set(unit) == {"Unit", "Service", "Install"}
    service = unit["Service"]
    assert service["ExecStart"][0].split()[-1] == "serve"
    assert service["DynamicUser"] == ["yes"]
    assert service["StateDirectory"] == ["edgemeta"]
    assert service["Environment"] == ["EDGEMETA_DATA_DIR=%S/edgemeta"]
    assert service["Restart"] == ["on-failure"]
    assert service["NoNewPrivileges"] == ["yes"]
    assert service["ProtectSystem"] == ["strict"]
    assert service["CapabilityBoundingSet"] == [""]
    assert "EDGEMETA_DATA_DIR" in setting_fields()
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def instructions(text: str) -> list[tuple[str, str]]:
    """A Containerfile's instructions (continuation lines joined, comments dropped)."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_containerfile_runs_serve_unprivileged_and_probes_readiness() -> None:
    steps = instructions((ROOT / "Containerfile").read_text())
    known = {"FROM", "ENV", "WORKDIR", "COPY", "RUN", "VOLUME", "USER", "EXPOSE"}
    known |= {"HEALTHCHECK", "STOPSIGNAL", "ENTRYPOINT", "CMD"}
    assert {word for word, _ in steps} <= known
    assert steps[0] == ("FROM", "python:3.11-slim")
    values = dict(steps)
    assert values["USER"] not in {"root", "0"}
    assert values["VOLUME"] == '["/var/lib/edgemeta"]'
    assert values["CMD"] == '["serve"]' and values["ENTRYPOINT"] == '["edgemeta"]'
    # Runtime dependencies only: the package, no extras.
    installs = [rest for word, rest in steps if word == "RUN" and "pip install" in rest]
    assert installs and all("[" not in rest for rest in installs)
    env = dict(
        item.split("=", 1) for word, rest in steps if word == "ENV" for item in shlex.split(rest)
    )
    assert set(k for k in env if k.startswith("EDGEMETA_")) <= setting_fields()
    assert env["EDGEMETA_DATA_DIR"] == "/var/lib/edgemeta"
    # The probe is `edgemeta health` (the ENTRYPOINT is not applied to a HEALTHCHECK's CMD),
    # which asks readiness and follows the serve settings to https (tests/cli/test_health.py).
    probe = values["HEALTHCHECK"]
    assert probe.endswith('CMD ["edgemeta", "health"]'), probe
    # Open: the probe holds no credential and authentication is on in the image.
    assert rule_for(METADATA, "GET", "/health/ready").open
    for copied in ("pyproject.toml", "README.md", "src"):
        assert (ROOT / copied).exists()
