"""The shared real-llama.cpp infrastructure: the tiny GGUF writer and the server fixture."""

from __future__ import annotations

import asyncio
import hashlib

import httpx
import pytest

from llm_upkeep.clients import LLMError, client_for, make_http_client
from tests.llamacpp_fixtures import llamacpp_missing

needs_llama = pytest.mark.skipif(llamacpp_missing() is not None, reason=str(llamacpp_missing()))


def _sha(p) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@needs_llama
def test_tiny_model_streams_words_not_bytes_and_never_stops_early(tiny_gguf):
    from llama_cpp import Llama

    m = Llama(model_path=str(tiny_gguf), n_ctx=512, verbose=False)
    prompt = "Summarize this contract clause: either party may terminate on thirty days written notice"
    # Words of the vocabulary tokenize as whole pieces, so suite prompts fit a small context.
    assert len(m.tokenize(prompt.encode())) <= 20
    pieces = [
        c["choices"][0]["text"]
        for c in m.create_completion(prompt, max_tokens=40, temperature=0, stream=True)
    ]
    text = "".join(pieces)
    # One token per chunk from the very first chunk: nothing held back as incomplete UTF-8.
    assert sum(1 for p in pieces if p) == 40
    assert text.isprintable() and len(text.split()) >= 20
    r = m.create_completion(prompt, max_tokens=40, temperature=0)
    assert r["choices"][0]["finish_reason"] == "length" and r["usage"]["completion_tokens"] == 40


@needs_llama
def test_two_seeds_give_two_different_models(tiny_gguf_factory):
    from llama_cpp import Llama

    a, b = tiny_gguf_factory(0), tiny_gguf_factory(1)
    assert _sha(a) != _sha(b)
    outs = []
    for p in (a, b):
        m = Llama(model_path=str(p), n_ctx=512, verbose=False)
        outs.append(
            m.create_completion("Classify this support ticket", max_tokens=16, temperature=0)["choices"][0][
                "text"
            ]
        )
    assert outs[0] != outs[1]


def test_same_seed_same_bytes(tmp_path):
    from llm_upkeep.sim.tiny_gguf import write_tiny_llama_gguf

    a = write_tiny_llama_gguf(tmp_path / "a.gguf", seed=7)
    b = write_tiny_llama_gguf(tmp_path / "b.gguf", seed=7)
    assert _sha(a) == _sha(b) and a.read_bytes()[:4] == b"GGUF"
    assert not list(tmp_path.glob(".*.tmp"))


async def _stream(endpoint, chat: bool) -> list:
    async with make_http_client() as http:
        client = client_for(endpoint, http)
        return [
            e
            async for e in client.stream_generate(
                "Extract the dates from this email", max_tokens=12, chat=chat
            )
        ]


def test_server_fixture_serves_streams_and_survives_kill_and_restart(llamacpp_server, request):
    assert request.node.get_closest_marker("llamacpp") is not None
    r = httpx.get(llamacpp_server.url + "/v1/models", timeout=5)
    assert r.json()["data"][0]["id"] == "tiny"
    ep = llamacpp_server.endpoint()
    for chat in (True, False):
        events = asyncio.run(_stream(ep, chat))
        assert events[-1].done and sum(1 for e in events if e.text) == 12

    url = llamacpp_server.url
    llamacpp_server.kill()
    assert not llamacpp_server.running
    with pytest.raises(LLMError) as ei:
        asyncio.run(_stream(ep, True))
    assert ei.value.kind == "connection_refused"

    llamacpp_server.restart()
    assert llamacpp_server.url == url and llamacpp_server.running
    assert asyncio.run(_stream(ep, True))[-1].done


def test_fixture_marks_its_tests(request):
    # Collected here without the server fixtures: no llamacpp marker.
    assert request.node.get_closest_marker("llamacpp") is None
