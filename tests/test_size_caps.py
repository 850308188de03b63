"""Every answer llm-upkeep reads from a server has a size cap, enforced while reading.

Each test points a real client at a loopback server that sends far more than the cap (100 MB,
or without end) and checks three things: the result is classified (never an exception out of
the probe or the review), the client hung up, and the server got to send only a small part.
"""

from __future__ import annotations

import asyncio
import itertools
import json

import pytest

from llm_upkeep.clients import LLMError, OllamaClient, OpenAIClient, make_http_client
from llm_upkeep.config import EndpointConfig
from llm_upkeep.probe import probe_endpoint
from llm_upkeep.review.config import ReviewConfig
from llm_upkeep.review.updates import check_model_updates
from tests.hostile_http import HUNDRED_MB, HostileServer, flood, head, trickle

# The documented caps (docs/bad-input.md): what a test allows the server to get through is the
# cap plus what loopback socket buffers hold, far below the 100 MB on offer.
MAX_BODY_BYTES = 16 * 1024 * 1024  # clients/base.py, a non-streamed answer
MAX_LINE_CHARS = 1024 * 1024  # clients/base.py, one stream line
MAX_REGISTRY_BYTES = 4 * 1024 * 1024  # review/updates.py, one registry answer


def ep(server: HostileServer, api: str = "ollama", **kw) -> EndpointConfig:
    kw.setdefault("timeout_s", 30.0)
    return EndpointConfig(name="hostile", api=api, url=server.url, model="m", **kw)


def run(coro):
    return asyncio.run(coro)


async def _with_client(cls, endpoint, fn):
    async with make_http_client() as http:
        return await fn(cls(endpoint, http))


def test_a_100_mb_answer_body_stops_at_the_cap():
    def respond(path, send):
        if send(head(length=None) + b'{"models": ["'):
            flood(send, HUNDRED_MB)

    with HostileServer(respond) as srv:
        with pytest.raises(LLMError) as ei:
            run(_with_client(OllamaClient, ep(srv), lambda c: c.list_models()))
        assert srv.hung_up.wait(10)
    assert ei.value.kind == "malformed" and "limit" in ei.value.detail
    assert srv.sent < MAX_BODY_BYTES + 16 * 1024 * 1024, srv.sent  # the cap plus socket buffers, not 100 MB


def test_an_announced_100_mb_body_is_refused_before_reading():
    def respond(path, send):
        if send(head(length=HUNDRED_MB)):
            flood(send, HUNDRED_MB)

    with HostileServer(respond) as srv:
        with pytest.raises(LLMError) as ei:
            run(_with_client(OpenAIClient, ep(srv, api="openai"), lambda c: c.list_models()))
        assert srv.hung_up.wait(10)
    assert ei.value.kind == "malformed" and str(HUNDRED_MB) in ei.value.detail
    assert srv.sent < 16 * 1024 * 1024, srv.sent


@pytest.mark.parametrize("api", ["ollama", "openai"])
def test_a_100_mb_stream_line_stops_at_the_line_cap(api):
    def respond(path, send):
        if path == "/api/ps":  # asked after the failed probe: a small, valid answer
            send(head(length=14) + b'{"models": []}')
            return
        ctype = "application/x-ndjson" if api == "ollama" else "text/event-stream"
        start = b'{"message":{"content":"' if api == "ollama" else b'data: {"choices":[{"delta":{"content":"'
        if send(head(ctype=ctype) + start):
            flood(send, HUNDRED_MB)

    with HostileServer(respond) as srv:
        res = run(_probe(ep(srv, api=api)))
        assert srv.hung_up.wait(10)
    assert not res.ok and res.error_kind == "malformed" and "longer than" in res.error_detail
    assert srv.sent < 4 * MAX_LINE_CHARS + 16 * 1024 * 1024, srv.sent


async def _probe(endpoint, **kw):
    async with make_http_client() as http:
        return await probe_endpoint(endpoint, http, **kw)


@pytest.mark.parametrize("api", ["ollama", "openai"])
def test_a_stream_that_ignores_max_tokens_is_cut_off_not_read_until_the_deadline(api):
    """Review finding: text was collected past max_tokens until timeout_s. The server here never
    ends; the probe must stop after what max_tokens allows and say so."""

    def token_lines():
        for i in itertools.count():
            if api == "ollama":
                yield json.dumps({"message": {"content": f"t{i} "}, "done": False}).encode() + b"\n"
            else:
                yield (
                    b"data: "
                    + json.dumps({"choices": [{"index": 0, "delta": {"content": f"t{i} "}}]}).encode()
                    + b"\n\n"
                )

    def respond(path, send):
        if path == "/api/ps":
            send(head(length=14) + b'{"models": []}')
            return
        ctype = "application/x-ndjson" if api == "ollama" else "text/event-stream"
        if send(head(ctype=ctype)):
            trickle(send, token_lines(), every_s=0.0005)

    max_tokens = 8
    with HostileServer(respond) as srv:
        res = run(_probe(ep(srv, api=api, timeout_s=60.0), max_tokens=max_tokens))
        assert srv.hung_up.wait(10), "the probe must hang up, not read until its 60 s deadline"
    chunks, chars = 2 * max_tokens + 8, 256 * (max_tokens + 8)  # probe.answer_limits
    assert not res.ok and res.error_kind == "malformed" and "max_tokens=8" in res.error_detail
    assert res.error_kind != "timeout"
    assert len(res.text) <= chars and res.text.count("t") <= chunks


def test_a_100_mb_registry_manifest_is_cut_at_the_cap_while_reading():
    """Review finding: MAX_BODY was checked only after the whole body was in memory."""

    def respond(path, send):
        if "/big/" in path:
            if send(head(length=None) + b'{"layers": ['):
                flood(send, HUNDRED_MB)
        else:
            body = json.dumps({"layers": [{"mediaType": "application/vnd.ollama.image.model", "size": 1,
                                           "digest": "sha256:" + "1" * 64}]}).encode()  # fmt: skip
            send(head(length=len(body)) + body)

    with HostileServer(respond) as srv:
        cfg = ReviewConfig(ollama_registry_url=srv.url, registry_timeout_s=30)
        r = check_model_updates(
            [
                ("big:1", "ollama", None, "sha256:" + "0" * 64),
                ("fine:1", "ollama", None, "sha256:" + "0" * 64),
            ],
            cfg,
        )
        assert srv.hung_up.wait(10)
    big, fine = r.models
    assert big.status == "error" and "too large" in big.detail
    assert fine.status == "update_available"
    assert srv.sent < MAX_REGISTRY_BYTES + 16 * 1024 * 1024, srv.sent


def test_an_announced_huge_registry_answer_is_not_read_at_all():
    def respond(path, send):
        if send(head(length=HUNDRED_MB)):
            flood(send, HUNDRED_MB)

    with HostileServer(respond) as srv:
        cfg = ReviewConfig(ollama_registry_url=srv.url, registry_timeout_s=30)
        (m,) = check_model_updates([("big:1", "ollama", None, None)], cfg).models
        assert srv.hung_up.wait(10)
    assert m.status == "error" and "too large" in m.detail
    assert srv.sent < 16 * 1024 * 1024


def test_error_bodies_are_read_only_up_to_a_small_cap():
    def respond(path, send):
        if send(head("500 Internal Server Error", length=None) + b'{"error": "'):
            flood(send, HUNDRED_MB)

    with HostileServer(respond) as srv:
        with pytest.raises(LLMError) as ei:
            run(_with_client(OllamaClient, ep(srv), lambda c: c.list_models()))
        assert srv.hung_up.wait(10)
    assert ei.value.kind == "http_5xx" and len(ei.value.detail) <= 300
    assert srv.sent < 16 * 1024 * 1024


def test_the_security_audits_version_probe_reads_a_few_bytes_not_100_mb():
    from llm_upkeep.security.exposure import _read_version

    def respond(path, send):
        if send(head(length=None) + b'{"version": "'):
            flood(send, HUNDRED_MB)

    async def go(srv):
        async with make_http_client() as http:
            return await _read_version(http, ep(srv), 30.0)

    with HostileServer(respond) as srv:
        product, version, _source = run(go(srv))
        assert srv.hung_up.wait(10)
    assert product == "ollama" and version is None
    assert srv.sent < 16 * 1024 * 1024, srv.sent
