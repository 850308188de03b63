"""Hostile and broken answers from an LLM server, through the real probe over loopback HTTP.

Every case ends in a ProbeResult (ok, or ok=False with a classified error kind), never an
exception; the table in docs/bad-input.md is this list."""

from __future__ import annotations

import asyncio
import json

import pytest

from llm_upkeep.clients import make_http_client
from llm_upkeep.clients.errors import KINDS
from llm_upkeep.config import EndpointConfig
from llm_upkeep.probe import probe_endpoint
from tests.hostile_http import HostileServer, head

OLLAMA_DONE = b'{"done": true, "eval_count": 2, "eval_duration": 1000000}\n'
SSE_DONE = b"data: [DONE]\n\n"


def ol(obj) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def sse(obj) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def delta(content) -> dict:
    return {"choices": [{"index": 0, "delta": {"content": content}}]}


# (api, body bytes after the head, expected kind: None = ok)
CASES = {
    "ollama_invalid_utf8_in_text": (
        "ollama",
        b'{"message": {"content": "caf\xc3\xa9 \xff\xfe"}, "done": false}\n' + OLLAMA_DONE,
        None,
    ),  # fmt: skip
    "ollama_raw_binary_line": ("ollama", b"\x00\x01\xff\xfe\x89PNG\n" + OLLAMA_DONE, "malformed"),
    "ollama_message_is_text": ("ollama", ol({"message": "hi", "done": False}) + OLLAMA_DONE, "malformed"),
    "ollama_content_is_number": (
        "ollama",
        ol({"message": {"content": 5}, "done": False}) + OLLAMA_DONE,
        "malformed",
    ),
    "ollama_content_is_list": (
        "ollama",
        ol({"message": {"content": ["a"]}, "done": False}) + OLLAMA_DONE,
        "malformed",
    ),  # fmt: skip
    "ollama_line_is_array": ("ollama", b"[1, 2, 3]\n" + OLLAMA_DONE, "malformed"),
    "ollama_line_is_null": ("ollama", b"null\n" + OLLAMA_DONE, "malformed"),
    "ollama_no_done_field": ("ollama", ol({"message": {"content": "x"}}), "malformed"),
    "ollama_never_done": ("ollama", ol({"message": {"content": "x"}, "done": False}), "truncated"),
    "ollama_eval_count_is_text": (
        "ollama",
        ol({"message": {"content": "x"}, "done": False}) + ol({"done": True, "eval_count": "many"}),
        None,
    ),  # fmt: skip
    "ollama_eval_count_infinite": (
        "ollama",
        ol({"message": {"content": "x"}, "done": False}) + b'{"done": true, "eval_count": Infinity}\n',
        None,
    ),  # fmt: skip
    "ollama_deep_nesting": ("ollama", b"[" * 200_000 + b"]" * 200_000 + b"\n", "malformed"),
    "ollama_error_object": ("ollama", ol({"error": "CUDA out of memory"}), "oom"),
    "ollama_error_is_object": ("ollama", ol({"error": {"nested": [1, 2]}}), "http_5xx"),
    "openai_choices_is_object": ("openai", sse({"choices": {"0": "x"}}) + SSE_DONE, "malformed"),
    "openai_delta_is_text": (
        "openai",
        sse({"choices": [{"index": 0, "delta": "hi"}]}) + SSE_DONE,
        "malformed",
    ),
    "openai_content_is_number": ("openai", sse(delta(7)) + SSE_DONE, "malformed"),
    "openai_usage_is_text": (
        "openai",
        sse(delta("a")) + sse({"choices": [], "usage": {"completion_tokens": "x"}}) + SSE_DONE,
        None,
    ),  # fmt: skip
    "openai_timings_are_text": (
        "openai",
        sse(delta("a")) + sse({"choices": [], "timings": {"prompt_ms": "slow"}}) + SSE_DONE,
        None,
    ),  # fmt: skip
    "openai_data_not_json": ("openai", b"data: {not json\n\n" + SSE_DONE, "malformed"),
    "openai_invalid_utf8": (
        "openai",
        b'data: {"choices": [{"index": 0, "delta": {"content": "\xff"}}]}\n\n' + SSE_DONE,
        None,
    ),  # fmt: skip
    "openai_no_done": ("openai", sse(delta("a")), "truncated"),
    "openai_html_page": ("openai", b"<html><body>502 Bad Gateway</body></html>", "truncated"),
}


def _server(api: str, body: bytes, ctype: str | None = None) -> HostileServer:
    def respond(path, send):
        if path == "/api/ps":
            send(head(length=14) + b'{"models": []}')
            return
        ct = ctype or ("application/x-ndjson" if api == "ollama" else "text/event-stream")
        send(head(ctype=ct, length=len(body)) + body)

    return HostileServer(respond)


async def _probe(srv: HostileServer, api: str):
    ep = EndpointConfig(name="bad", api=api, url=srv.url, model="m", timeout_s=20.0)
    async with make_http_client() as http:
        return await probe_endpoint(ep, http, max_tokens=8)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_broken_stream_is_a_classified_probe_result(case):
    api, body, kind = CASES[case]
    with _server(api, body) as srv:
        res = asyncio.run(_probe(srv, api))
    if kind is None:
        assert res.ok, (res.error_kind, res.error_detail)
    else:
        assert not res.ok and res.error_kind == kind, (res.error_kind, res.error_detail)
    assert res.error_kind is None or res.error_kind in KINDS
    assert len(res.error_detail or "") <= 300


def test_invalid_utf8_text_arrives_as_replacement_characters():
    api, body, _ = CASES["ollama_invalid_utf8_in_text"]
    with _server(api, body) as srv:
        res = asyncio.run(_probe(srv, api))
    assert res.text == "café \ufffd\ufffd"
