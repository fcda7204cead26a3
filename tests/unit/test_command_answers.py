"""How core-command reads a device service's error reply: an EdgeX BaseResponse keeps its
status, edgemeta.sdk's "<status> <message>" text keeps its status, anything else is 500."""

from __future__ import annotations

import orjson

from edgemeta.peers.commands import answer_of


def _refusal(payload: object) -> tuple[int, dict[str, object]]:
    answer = answer_of({"errorCode": 1, "payload": payload}, "ds1")
    return answer.status, orjson.loads(answer.body)


def test_the_sdk_s_leading_status_is_kept() -> None:
    status, body = _refusal("423 device 'd1' was released by service 'ds1'")
    assert status == 423 and body["statusCode"] == 423
    assert body["message"] == "device service 'ds1': device 'd1' was released by service 'ds1'"
    assert _refusal("404 no command 'x'")[0] == 404


def test_a_base_response_keeps_its_status() -> None:
    assert _refusal({"statusCode": 400, "message": "bad"}) == (
        400,
        {"apiVersion": "v3", "statusCode": 400, "message": "device service 'ds1': bad"},
    )


def test_other_text_is_a_500() -> None:
    for text in ("driver exploded", "200 fine", "42 nope", "4000 long"):
        assert _refusal(text)[0] == 500, text
