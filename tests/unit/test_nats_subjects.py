"""Topic ↔ NATS subject mapping (no server needed)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgemeta.bus.nats import (
    NatsBus,
    filter_to_subjects,
    level_to_token,
    subject_covers,
    subject_matches,
    subject_to_topic,
    token_to_level,
    topic_to_subject,
)
from edgemeta.bus.topics import level, matches, system_event_topic
from edgemeta.domain.errors import ContractInvalid


def test_edgex_mapping_of_plain_topics() -> None:
    # What go-mod-messaging does: "/" becomes "." and nothing else changes.
    topic = system_event_topic("edgex", "device", "add", "device-virtual", "Random-Integer-Device")
    assert topic_to_subject(topic) == (
        "edgex.system-events.core-metadata.device.add.device-virtual.Random-Integer-Device"
    )
    assert subject_to_topic(topic_to_subject(topic)) == topic


def test_filters_map_wildcards() -> None:
    assert filter_to_subjects("edgex/system-events/core-metadata/+/+/device-virtual/#") == [
        "edgex.system-events.core-metadata.*.*.device-virtual.>",
        # MQTT's "#" also matches the parent level; NATS's ">" does not, hence a second one.
        "edgex.system-events.core-metadata.*.*.device-virtual",
    ]
    assert filter_to_subjects("#") == [">"]
    assert filter_to_subjects("a/+") == ["a.*"]
    assert filter_to_subjects("a/b c/+/d.e") == ["a.b%20c.*.d%2Ee"]


@pytest.mark.parametrize(
    ("lv", "token"),
    [
        ("plain-name_1~", "plain-name_1~"),
        ("Thermostat v1.2", "Thermostat%20v1%2E2"),
        ("*", "%2A"),
        (">", "%3E"),
        ("a*b>c", "a%2Ab%3Ec"),
        ("tab\there\r\n", "tab%09here%0D%0A"),
        ("del\x7f", "del%7F"),
        ("ümlaut", "ümlaut"),  # subjects carry UTF-8
        ("100%", "100%"),
        ("a%2Fb", "a%2Fb"),  # topics.level's escape of "/" passes through untouched
    ],
)
def test_level_escaping(lv: str, token: str) -> None:
    assert level_to_token(lv) == token
    assert token_to_level(token) == lv


def test_escaped_names_give_edgex_subjects() -> None:
    # With EnableNameFieldEscape an EdgeX service built in Go escapes "my.svc" as "my%2Esvc" and
    # maps "/" to "." only, so "%" must stay as it is for both sides to meet on one subject.
    name = "my.svc v2"
    lv = level(name, name_escape=True)
    assert lv == "my%2Esvc%20v2"
    assert topic_to_subject(f"edgex/{lv}/validate/device") == "edgex.my%2Esvc%20v2.validate.device"
    # The price: such a level comes back decoded; unescaping gives the same name either way.
    assert subject_to_topic("edgex.my%2Esvc%20v2") == "edgex/my.svc v2"


def test_literal_escape_sequence_is_ambiguous() -> None:
    # A level that literally holds an escape we produce cannot be told apart (documented).
    assert level_to_token("%2E") == level_to_token("%2E")
    assert token_to_level(level_to_token(".")) == "."
    assert token_to_level(level_to_token("%2E")) == "."
    # Lower-case or unknown escapes are not ours and stay.
    assert token_to_level("%2e%41%2F") == "%2e%41%2F"


def test_empty_levels_are_refused() -> None:
    for topic in ("a//b", "/a", "a/", ""):
        with pytest.raises(ContractInvalid):
            topic_to_subject(topic)
    with pytest.raises(ContractInvalid):
        filter_to_subjects("a//#")
    with pytest.raises(ContractInvalid):
        filter_to_subjects("a/#/b")


# Levels as a topic can hold them: anything but "/" and the MQTT wildcards, never empty.
levels = st.text(
    alphabet=st.characters(blacklist_characters="/+#", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=12,
).filter(lambda s: "%" not in s)  # literal escapes are the documented ambiguity
topics = st.lists(levels, min_size=1, max_size=6).map("/".join)


@given(topics)
def test_round_trip(topic: str) -> None:
    subject = topic_to_subject(topic)
    assert subject_to_topic(subject) == topic
    tokens = subject.split(".")
    assert len(tokens) == topic.count("/") + 1
    for t in tokens:
        assert t
        assert not any(c in t for c in " \t\r\n*>")


@given(st.lists(levels, min_size=1, max_size=5), st.data())
def test_filter_semantics_match_mqtt(topic_levels: list[str], data: st.DataObject) -> None:
    # Replace some levels of a topic by wildcards: the NATS subscriptions must accept exactly
    # the topics the MQTT filter accepts.
    topic = "/".join(topic_levels)
    choices = [data.draw(st.sampled_from([lv, "+", lv])) for lv in topic_levels]
    cut = data.draw(st.integers(0, len(choices)))
    f = "/".join(choices[:cut] + (["#"] if cut < len(choices) or cut == 0 else []))
    candidates = [topic, "/".join(topic_levels[:-1]) or "x", topic + "/more", "other/" + topic]
    for candidate in candidates:
        nats_match = any(
            subject_matches(s, topic_to_subject(candidate)) for s in filter_to_subjects(f)
        )
        assert nats_match == matches(f, candidate), (f, candidate)


def test_subject_matches() -> None:
    assert subject_matches("a.*.c", "a.b.c")
    assert not subject_matches("a.*.c", "a.b.c.d")
    assert subject_matches("a.>", "a.b.c")
    assert not subject_matches("a.>", "a")
    assert subject_matches(">", "a")
    assert not subject_matches("a.b", "a")


def test_subject_covers() -> None:
    assert subject_covers("edgex.>", "edgex.system-events.>")
    assert subject_covers("edgex.system-events.>", "edgex.system-events.>")
    assert subject_covers("edgex.*.x", "edgex.a.x")
    assert subject_covers("edgex.*.x", "edgex.*.x")
    assert not subject_covers("edgex.a.x", "edgex.*.x")
    assert not subject_covers("edgex.system-events.core-metadata.device.>", "edgex.system-events.>")
    assert not subject_covers("edgex.*", "edgex.>")
    assert not subject_covers("edgex.>", "edgex")
    assert subject_covers(">", "edgex")


def test_url_and_description_hide_credentials() -> None:
    bus = NatsBus("nats://user:secret@broker.example:4333")
    assert bus.description == "nats server broker.example:4333"
    assert "secret" not in bus.description
    assert NatsBus("nats://localhost").port == 4222
    with pytest.raises(ValueError, match="nats://"):
        NatsBus("mqtt://localhost")
    with pytest.raises(ContractInvalid):
        NatsBus("nats://localhost", jetstream_subjects=["a/#/b"])
