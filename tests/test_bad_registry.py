"""Hostile registry answers: each is that model's error row, with a reason; the others keep
their result; nothing is raised (docs/bad-input.md lists the cases)."""

from __future__ import annotations

import json

import pytest

from llm_upkeep.review.config import ReviewConfig
from llm_upkeep.review.updates import check_model_updates
from tests.hostile_http import HUNDRED_MB, HostileServer, flood, head

GOOD = json.dumps({"layers": [{"mediaType": "application/vnd.ollama.image.model", "size": 1,
                              "digest": "sha256:" + "1" * 64}]}).encode()  # fmt: skip


def body_answer(status: str, body: bytes, **hdr):
    extra = "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in hdr.items())

    def answer(send):
        h = head(status, length=len(body))
        send(h[:-2] + extra.encode() + b"\r\n" + body)

    return answer


OLLAMA = {
    "not_json": (body_answer("200 OK", b"<html>rate limited</html>"), "not JSON"),
    "json_array": (body_answer("200 OK", b"[1, 2]"), "no layers"),
    "layers_missing": (body_answer("200 OK", b'{"schemaVersion": 2}'), "no layers"),
    "layers_is_object": (body_answer("200 OK", b'{"layers": {"a": 1}}'), "no layers"),
    "layer_is_text": (body_answer("200 OK", b'{"layers": ["x"]}'), "not an object"),
    "layer_size_is_text": (body_answer("200 OK", b'{"layers": [{"size": "10GB"}]}'), "size"),
    "layer_size_is_bool": (body_answer("200 OK", b'{"layers": [{"size": true}]}'), "size"),
    "digest_header_garbage": (
        body_answer("200 OK", GOOD, Docker_Content_Digest="$(reboot)"),
        "malformed digest",
    ),
    "deep_nesting": (body_answer("200 OK", b"[" * 100_000 + b"]" * 100_000), "not JSON"),
    "invalid_utf8": (body_answer("200 OK", b'{"layers": [{"mediaType": "\xff\xfe"}]}'), "not JSON"),
    "http_500_flood": (
        lambda send: send(head("500 Oops", length=None)) and flood(send, HUNDRED_MB),
        "HTTP 500",
    ),
    "huge_200": (lambda send: send(head(length=None)) and flood(send, HUNDRED_MB), "too large"),
    "redirect_loop": (
        body_answer("302 Found", b"", Location="/v2/library/redirect-loop/manifests/1"),
        "cannot reach",
    ),
    "unauthorized": (body_answer("401 Unauthorized", b"{}"), "not authorized"),
    "cut_mid_body": (lambda send: send(head(length=1000) + b'{"layers": ['), "cannot reach"),
}

HF = {
    "sha_missing": (body_answer("200 OK", b'{"id": "org/m"}'), "no 'sha'"),
    "sha_not_hex": (body_answer("200 OK", b'{"sha": "../../etc"}'), "no 'sha'"),
    "sha_is_number": (body_answer("200 OK", b'{"sha": 12345678}'), "no 'sha'"),
    "answer_is_list": (body_answer("200 OK", b'["sha"]'), "no 'sha'"),
}


def _run(cases: dict, source: str, name_of):
    answers = {case.replace("_", "-"): fn for case, (fn, _) in cases.items()}

    def respond(path, send):
        for key, fn in answers.items():
            if f"/{key}/" in path:
                return fn(send)
        send(head(length=len(GOOD)) + GOOD)

    with HostileServer(respond) as srv:
        cfg = ReviewConfig(ollama_registry_url=srv.url, hf_endpoint=srv.url, registry_timeout_s=10)
        pins = [
            (name_of(c), source, None if source == "ollama" else "main", "sha256:" + "0" * 64) for c in cases
        ]
        if source == "ollama":
            pins.append(("fine:1", "ollama", None, "sha256:" + "0" * 64))
        return check_model_updates(pins, cfg)


@pytest.mark.parametrize("source,cases", [("ollama", OLLAMA), ("hf", HF)])
def test_hostile_registry_answers_are_error_rows_and_hide_nothing(source, cases):
    def name_of(case):
        return case.replace("_", "-") + (":1" if source == "ollama" else "")

    name_of_hf = (lambda c: "org/" + c.replace("_", "-")) if source == "hf" else name_of
    r = _run(cases, source, name_of_hf)
    rows = {m.name: m for m in r.models}
    for case, (_fn, expect) in cases.items():
        m = rows[name_of_hf(case)]
        assert m.status == "error" and expect in m.detail, (case, m.detail)
        assert len(m.detail) <= 400
    if source == "ollama":
        assert rows["fine:1"].status == "update_available"
    assert r.verdict == "error"
