"""Simulator protocol fidelity (raw HTTP) and the typed clients on top of it."""

from __future__ import annotations

import asyncio
import json
import math
import os
import socket
import subprocess
import sys
import time
from contextlib import aclosing

import httpx
import pytest

from llm_upkeep.clients import (
    LLMError,
    OllamaClient,
    OpenAIClient,
    client_for,
    make_http_client,
    parse_prometheus,
)
from llm_upkeep.clients.errors import classify_status
from llm_upkeep.redact import register_secret
from llm_upkeep.sim.llm_server import SimBehavior, SimServer
from tests.llm_fixtures import endpoint_for
from tests.timing import on_schedule


def post_lines(
    url: str, body: dict, headers: dict | None = None
) -> tuple[httpx.Response, list[tuple[float, str]]]:
    """Raw streamed POST: (response, [(seconds since send, line)])."""
    out = []
    with httpx.Client(timeout=10) as c:
        t0 = time.perf_counter()
        with c.stream("POST", url, json=body, headers=headers or {}) as r:
            for line in r.iter_lines():
                out.append((time.perf_counter() - t0, line))
    return r, out


def run(coro):
    return asyncio.run(coro)


async def with_client(ep, fn):
    async with make_http_client() as http:
        return await fn(client_for(ep, http))


async def collect(client, prompt="hi", **kw):
    kw.setdefault("max_tokens", 100)
    events = []
    async with aclosing(client.stream_generate(prompt, **kw)) as it:
        async for ev in it:
            events.append(ev)
    return events


# ---------------------------------------------------------------- Ollama protocol


def test_ollama_generate_stream_is_ndjson_with_final_metrics_in_ns(sim_factory):
    sim = sim_factory(ttft_s=0.05, itl_s=0.01, tokens=5)
    r, lines = post_lines(sim.url + "/api/generate", {"model": "llama3:8b", "prompt": "why?"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-ndjson"
    assert r.headers["transfer-encoding"] == "chunked"
    objs = [json.loads(line) for _, line in lines if line]
    assert [o["done"] for o in objs] == [False] * 5 + [True]
    assert "".join(o["response"] for o in objs) == "The quick brown fox jumps"
    final = objs[-1]
    assert final["response"] == "" and final["done_reason"] == "stop"
    assert final["eval_count"] == 5
    assert isinstance(final["total_duration"], int) and final["total_duration"] > 5e7  # ns, not s
    assert final["prompt_eval_duration"] == pytest.approx(0.05e9, rel=0.2)
    assert "load_duration" not in final  # zero metrics are omitted, as Ollama's omitempty does
    assert final["created_at"].endswith("Z")


def test_ollama_reports_load_duration_when_cold(sim_factory):
    sim = sim_factory(ttft_s=0.02, itl_s=0.001, tokens=2, load_duration_s=0.1)
    _, lines = post_lines(sim.url + "/api/generate", {"model": "llama3:8b", "prompt": "x"})
    final = json.loads(lines[-1][1])
    assert final["load_duration"] == 100_000_000


def test_ollama_chat_stream_and_non_stream(sim_factory):
    sim = sim_factory(ttft_s=0.02, itl_s=0.005, tokens=4)
    body = {"model": "llama3:8b", "messages": [{"role": "user", "content": "hello"}]}
    _, lines = post_lines(sim.url + "/api/chat", body)
    objs = [json.loads(x) for _, x in lines if x]
    assert all(o["message"]["role"] == "assistant" for o in objs)
    assert "".join(o["message"]["content"] for o in objs) == "The quick brown fox"
    r = httpx.post(sim.url + "/api/chat", json={**body, "stream": False}, timeout=5)
    o = r.json()
    assert r.headers["content-type"].startswith("application/json")
    assert o["done"] is True and o["message"]["content"] == "The quick brown fox" and o["eval_count"] == 4


def test_ollama_num_predict_caps_and_answers_are_deterministic(sim_factory):
    sim = sim_factory(
        ttft_s=0.01, itl_s=0.001, tokens=50, answers={"capital of france": "Paris is the capital."}
    )
    o = httpx.post(
        sim.url + "/api/generate",
        json={"model": "llama3:8b", "prompt": "x", "stream": False, "options": {"num_predict": 7}},
        timeout=5,
    ).json()
    assert (o["eval_count"], o["done_reason"]) == (7, "length")
    o = httpx.post(
        sim.url + "/api/generate",
        json={"model": "llama3:8b", "prompt": "What is the Capital of France?", "stream": False},
        timeout=5,
    ).json()
    assert o["response"] == "Paris is the capital."
    assert o["eval_count"] == 4 and o["done_reason"] == "stop"


def test_ollama_thinking_chunks_come_first(sim_factory):
    sim = sim_factory(ttft_s=0.01, itl_s=0.001, tokens=3, thinking=True, thinking_tokens=2)
    _, lines = post_lines(sim.url + "/api/generate", {"model": "llama3:8b", "prompt": "x"})
    objs = [json.loads(x) for _, x in lines if x]
    assert [o.get("thinking", "") for o in objs[:2]] == ["Let", " me"]
    assert objs[0]["response"] == "" and objs[2]["response"] == "The"


def test_ollama_management_routes(sim_factory):
    sim = sim_factory(vram_fraction=0.75, models=["qwen2.5:7b"])
    with httpx.Client(base_url=sim.url, timeout=5) as c:
        assert c.get("/").text == "Ollama is running"
        assert c.get("/api/version").json() == {"version": "0.12.6"}
        tags = c.get("/api/tags").json()["models"]
        assert [m["name"] for m in tags] == ["llama3:8b", "qwen2.5:7b"]
        assert tags[0]["digest"] == sim.behavior.digest and tags[0]["details"]["format"] == "gguf"
        ps = c.get("/api/ps").json()["models"][0]
        assert ps["size_vram"] == int(ps["size"] * 0.75)
        show = c.post("/api/show", json={"model": "llama3:8b"}).json()
        assert show["details"]["family"] == "llama" and "completion" in show["capabilities"]
        assert c.post("/api/show", json={"model": "nope"}).status_code == 404
        assert c.post("/api/generate", json={"model": "nope", "prompt": "x"}).json() == {
            "error": "model 'nope' not found"
        }
        assert c.get("/api/nothing").status_code == 404
        assert c.get("/api/generate").status_code == 405
        # Management routes work without any key, as on Ollama.
        assert c.request("DELETE", "/api/delete", json={"model": "qwen2.5:7b"}).status_code == 200
        assert c.request("DELETE", "/api/delete", json={"model": "qwen2.5:7b"}).status_code == 404
        created = [
            json.loads(x)
            for x in c.post("/api/create", json={"model": "mario", "from": "llama3:8b"}).text.split("\n")
            if x
        ]
        assert created[-1] == {"status": "success"}
        assert "mario:latest" in [m["name"] for m in c.get("/api/tags").json()["models"]]
        pushed = [json.loads(x) for x in c.post("/api/push", json={"model": "mario"}).text.split("\n") if x]
        assert pushed[0] == {"status": "retrieving manifest"} and pushed[-1] == {"status": "success"}


def test_ollama_pull_streams_progress_and_installs_the_remote_digest(sim_factory):
    new = "ab" * 32
    sim = sim_factory(registry={"llama3:8b": new, "phi3:mini": "cd" * 32}, pull_duration_s=0.05)
    _, lines = post_lines(sim.url + "/api/pull", {"model": "llama3:8b"})
    objs = [json.loads(x) for _, x in lines if x]
    assert objs[0] == {"status": "pulling manifest"}
    downloads = [o for o in objs if "total" in o]
    assert downloads and all(o["digest"] == f"sha256:{new}" for o in downloads)
    done = [o.get("completed", 0) for o in downloads]
    assert done == sorted(done) and done[-1] == downloads[-1]["total"]
    assert [o["status"] for o in objs[-3:]] == ["verifying sha256 digest", "writing manifest", "success"]
    assert sim.behavior.digest == new
    # Unknown to the registry: an error line, like Ollama's.
    _, lines = post_lines(sim.url + "/api/pull", {"model": "missing:1b"})
    assert json.loads(lines[-1][1]) == {"error": "pull model manifest: file does not exist"}


def test_ollama_embeddings_are_deterministic_and_similar_texts_are_near(sim_factory):
    sim = sim_factory(embedding_dim=64)
    texts = ["the cat sat on the mat", "the cat sat on a mat", "quarterly revenue grew strongly"]
    o = httpx.post(sim.url + "/api/embed", json={"model": "llama3:8b", "input": texts}, timeout=5).json()
    a, b, c = o["embeddings"]
    assert len(a) == 64

    def cos(x, y):
        return sum(p * q for p, q in zip(x, y, strict=True))

    assert math.isclose(cos(a, a), 1.0, abs_tol=1e-6)
    assert cos(a, b) > 0.7 > cos(a, c)
    again = httpx.post(
        sim.url + "/api/embed", json={"model": "llama3:8b", "input": texts[0]}, timeout=5
    ).json()
    assert again["embeddings"][0] == a


# ---------------------------------------------------------------- OpenAI protocol


def test_openai_chat_sse_role_chunk_usage_chunk_and_done(sim_factory):
    sim = sim_factory(ttft_s=0.2, itl_s=0.01, tokens=3)
    body = {
        "model": "llama3:8b",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    r, lines = post_lines(sim.url + "/v1/chat/completions", body)
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [(t, x) for t, x in lines if x]
    assert all(x.startswith("data: ") for _, x in events)
    assert events[-1][1] == "data: [DONE]"
    chunks = [json.loads(x[6:]) for _, x in events[:-1]]
    first = chunks[0]
    assert first["object"] == "chat.completion.chunk"
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    # the role chunk is sent at once, well before the first token
    assert events[0][0] < events[1][0] - 0.1
    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:4]] == ["The", " quick", " brown"]
    assert on_schedule(events[1][0], 0.2, late=0.2)
    assert chunks[4]["choices"][0]["finish_reason"] == "stop"
    usage_chunk = chunks[5]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] == 3
    assert len({c["id"] for c in chunks}) == 1


def test_openai_no_usage_chunk_unless_requested(sim_factory):
    sim = sim_factory(ttft_s=0.01, itl_s=0.001, tokens=3)
    body = {"model": "llama3:8b", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    _, lines = post_lines(sim.url + "/v1/chat/completions", body)
    chunks = [json.loads(x[6:]) for _, x in lines if x and x != "data: [DONE]"]
    assert all(c["choices"] for c in chunks)


def test_openai_completions_and_non_stream(sim_factory):
    sim = sim_factory(ttft_s=0.01, itl_s=0.001, tokens=6)
    _, lines = post_lines(sim.url + "/v1/completions", {"model": "llama3:8b", "prompt": "x", "stream": True})
    chunks = [json.loads(x[6:]) for _, x in lines if x and x != "data: [DONE]"]
    assert chunks[0]["object"] == "text_completion"
    assert "".join(c["choices"][0]["text"] for c in chunks) == "The quick brown fox jumps over"
    o = httpx.post(
        sim.url + "/v1/chat/completions",
        json={"model": "llama3:8b", "messages": [{"role": "user", "content": "x"}], "max_tokens": 2},
        timeout=5,
    ).json()
    assert o["object"] == "chat.completion"
    assert o["choices"][0]["message"] == {"role": "assistant", "content": "The quick"}
    assert o["choices"][0]["finish_reason"] == "length"
    assert o["usage"]["completion_tokens"] == 2


def test_openai_models_health_version_and_unknown_model(sim_factory):
    sim = sim_factory()
    with httpx.Client(base_url=sim.url, timeout=5) as c:
        assert [m["id"] for m in c.get("/v1/models").json()["data"]] == ["llama3:8b"]
        assert c.get("/health").status_code == 200
        assert c.get("/version").json()["version"] == "0.12.6"
        r = c.post("/v1/completions", json={"model": "gpt-x", "prompt": "x"})
        assert r.status_code == 404 and r.json()["type"] == "NotFoundError"


def test_metrics_counters_increase_with_served_tokens(sim_factory):
    sim = sim_factory(ttft_s=0.01, itl_s=0.001, tokens=7)
    before = parse_prometheus(httpx.get(sim.url + "/metrics", timeout=5).text)
    assert before["vllm:generation_tokens_total"] == 0
    for _ in range(3):
        httpx.post(
            sim.url + "/v1/completions",
            json={"model": "llama3:8b", "prompt": "a b c", "max_tokens": 50},
            timeout=5,
        )
    text = httpx.get(sim.url + "/metrics", timeout=5).text
    assert "# TYPE vllm:generation_tokens_total counter" in text
    after = parse_prometheus(text)
    assert after["vllm:generation_tokens_total"] == 21
    assert after["vllm:prompt_tokens_total"] == 9
    assert after["vllm:num_requests_running"] == 0
    assert 0 <= after["vllm:gpu_cache_usage_perc"] <= 1


def test_api_key_guards_v1_but_not_health_metrics_or_ollama_routes(sim_factory):
    sim = sim_factory(api_key="sk-sim-secret-123")
    with httpx.Client(base_url=sim.url, timeout=5) as c:
        assert c.get("/v1/models").status_code == 401
        assert c.get("/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/v1/models", headers={"Authorization": "Bearer sk-sim-secret-123"}).status_code == 200
        assert c.get("/health").status_code == 200
        assert c.get("/metrics").status_code == 200
        assert c.get("/api/tags").status_code == 200


# ---------------------------------------------------------------- timing and concurrency


def test_token_schedule_does_not_drift(sim_factory):
    sim = sim_factory(ttft_s=0.1, itl_s=0.001, tokens=1000)
    _, lines = post_lines(sim.url + "/api/generate", {"model": "llama3:8b", "prompt": "x"})
    times = [t for t, x in lines if x]
    assert len(times) == 1001
    assert on_schedule(times[0], 0.1, late=0.2)
    # 1000 accumulated asyncio.sleep(0.001) take 1.13-1.15 s here (the loop rounds timeouts up to
    # whole milliseconds); an absolute schedule catches up after every late token.
    assert on_schedule(times[999] - times[0], 0.999, late=0.07)


def test_sixteen_concurrent_streams_are_not_serialized(sim_factory):
    sim = sim_factory(ttft_s=0.2, itl_s=0.01, tokens=30)
    ep = endpoint_for(sim, api="openai")

    async def one(http):
        t = time.perf_counter()
        events = await collect(client_for(ep, http))
        return events[-1].t - t, "".join(e.text for e in events)

    async def go():
        async with make_http_client() as http:
            t = time.perf_counter()
            res = await asyncio.gather(*[one(http) for _ in range(16)])
            return res, time.perf_counter() - t

    res, wall = run(go())
    expected = 0.2 + 29 * 0.01
    # Never faster than the schedule; how much later depends on this process's GIL (16 streams and
    # the simulator share it), so overlap is asserted by structure rather than by a tight window.
    assert all(e2e >= expected - 0.02 for e2e, _ in res)
    assert all(text.startswith("The quick") for _, text in res)
    assert wall < 4 * expected  # serialized it would be 16 x 0.49 s = 7.8 s
    assert len(res) == 16
    assert len([r for r in sim.requests if r["path"] == "/v1/chat/completions"]) == 16


def test_fault_refused_really_closes_the_port_and_reopens_it(sim_factory):
    sim = sim_factory()
    port = sim.port
    sim.set_fault("refused")
    assert not sim.listening
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    sim.set_fault(None)
    assert sim.port == port
    assert httpx.get(sim.url + "/api/version", timeout=5).status_code == 200


def test_requests_are_recorded(sim_factory):
    sim = sim_factory()
    httpx.post(sim.url + "/api/show", json={"model": "llama3:8b"}, headers={"X-Test": "1"}, timeout=5)
    rec = sim.requests[-1]
    assert (rec["method"], rec["path"], rec["json"]) == ("POST", "/api/show", {"model": "llama3:8b"})
    assert rec["headers"]["x-test"] == "1" and rec["time"] <= time.time()


def test_server_stop_is_prompt_even_with_hung_requests():
    sim = SimServer(SimBehavior(fault="hang")).start()

    def hang():
        with pytest.raises(httpx.HTTPError):
            httpx.get(sim.url + "/api/tags", timeout=3)

    import threading

    th = threading.Thread(target=hang)
    th.start()
    time.sleep(0.2)
    t = time.perf_counter()
    sim.stop()
    assert time.perf_counter() - t < 2.0
    th.join(5)
    assert not th.is_alive()


def test_cli_serves_until_interrupted(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llm_upkeep.sim.llm_server",
            "--port",
            str(port),
            "--ttft",
            "0.05",
            "--tokens",
            "3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        line = p.stdout.readline()
        assert f"listening on http://127.0.0.1:{port}" in line, line
        o = httpx.post(
            f"http://127.0.0.1:{port}/api/generate",
            json={"model": "llama3:8b", "prompt": "x", "stream": False},
            timeout=5,
        ).json()
        assert o["eval_count"] == 3
    finally:
        p.send_signal(2)
        p.wait(10)
    assert p.returncode == 0


# ---------------------------------------------------------------- clients


@pytest.mark.parametrize("api", ["ollama", "openai"])
def test_client_stream_events_and_usage(sim_factory, api):
    sim = sim_factory(ttft_s=0.05, itl_s=0.005, tokens=8, thinking=True, thinking_tokens=3)
    events = run(with_client(endpoint_for(sim, api=api), lambda c: collect(c, system="be brief")))
    assert events[-1].done and events[-1].usage == {"prompt_tokens": events[-1].usage["prompt_tokens"],
                                                     "completion_tokens": 11}  # fmt: skip
    assert "".join(e.reasoning for e in events) == "Let me think"
    assert "".join(e.text for e in events) == "The quick brown fox jumps over the lazy"
    assert all(b.t >= a.t for a, b in zip(events, events[1:], strict=False))
    sent = sim.requests[-1]["json"]
    assert sent["messages"][0] == {"role": "system", "content": "be brief"}
    if api == "ollama":
        assert sent["options"] == {"temperature": 0.0, "num_predict": 100, "seed": 42}
        assert events[-1].server["eval_count"] == 11 and events[-1].server["total_duration_s"] > 0.05
    else:
        assert sent["stream_options"] == {"include_usage": True} and sent["max_tokens"] == 100
        assert events[-1].server == {"done_reason": "stop"}


def test_openai_client_reads_newer_reasoning_field(sim_factory):
    sim = sim_factory(
        ttft_s=0.01, itl_s=0.001, tokens=2, thinking=True, thinking_tokens=2, reasoning_field="reasoning"
    )
    events = run(with_client(endpoint_for(sim, api="openai"), collect))
    assert "".join(e.reasoning for e in events) == "Let me"


@pytest.mark.parametrize("api", ["ollama", "openai"])
def test_client_complete_list_models_version_embed(sim_factory, api):
    sim = sim_factory(ttft_s=0.01, itl_s=0.001, tokens=10)
    ep = endpoint_for(sim, api=api)

    async def go(c):
        return (
            await c.complete("hi", max_tokens=3),
            await c.complete("hi", max_tokens=3, chat=False),
            await c.list_models(),
            await c.version(),
            await c.embed(["a b", "c"]),
        )

    comp, comp2, models, version, embs = run(with_client(ep, go))
    assert comp["text"] == comp2["text"] == "The quick brown"
    assert comp["usage"]["completion_tokens"] == 3 and comp["finish_reason"] == "length"
    assert models == ["llama3:8b"]
    assert version == "0.12.6"
    assert len(embs) == 2 and len(embs[0]) == 16


def test_embed_and_version_are_none_where_the_server_has_no_route(sim_factory):
    sim = sim_factory(route_status={"/v1/embeddings": 404, "/version": 404, "/metrics": 404})
    ep = endpoint_for(sim, api="openai")

    async def go(c):
        return await c.embed(["x"]), await c.version(), await c.metrics()

    assert run(with_client(ep, go)) == (None, None, {})


def test_ollama_client_ps_show_tags_pull_delete(sim_factory):
    sim = sim_factory(vram_fraction=0.5, registry={"llama3:8b": "ef" * 32}, pull_duration_s=0.02)

    async def go(c: OllamaClient):
        progress = [p async for p in c.pull()]
        return await c.ps(), await c.show(), await c.tags(), progress, await c.delete("gone:1b")

    ps, show, tags, progress, deleted = run(with_client(endpoint_for(sim), go))
    assert ps[0]["size_vram"] == ps[0]["size"] // 2
    assert show["details"]["format"] == "gguf"
    assert tags[0]["digest"] == "ef" * 32
    assert progress[-1] == {"status": "success"} and any("completed" in p for p in progress)
    assert deleted is False


def test_ollama_client_pull_error_is_classified(sim_factory):
    sim = sim_factory(pull_error="digest mismatch, expected sha256:aa, got sha256:bb", pull_duration_s=0.01)

    async def go(c):
        return [p async for p in c.pull()]

    with pytest.raises(LLMError) as ei:
        run(with_client(endpoint_for(sim), go))
    assert ei.value.kind == "http_5xx" and "digest mismatch" in ei.value.detail


def test_openai_client_health_and_metrics(sim_factory):
    sim = sim_factory(ttft_s=0.01, itl_s=0.001, tokens=4)
    ep = endpoint_for(sim, api="openai")

    async def go(c: OpenAIClient):
        await collect(c)
        return await c.health(), await c.metrics()

    healthy, metrics = run(with_client(ep, go))
    assert healthy is True and metrics["vllm:generation_tokens_total"] == 4
    sim.set_fault("http_500")
    assert run(with_client(ep, lambda c: c.health())) is False
    sim.set_fault("refused")
    assert run(with_client(ep, lambda c: c.health())) is False


def test_client_sends_bearer_key_and_auth_failure_is_redacted(sim_factory, monkeypatch):
    secret = "sk-test-abcdefgh12345678"
    sim = sim_factory(api_key=secret)
    monkeypatch.setenv("SIM_KEY", secret)
    ok = run(with_client(endpoint_for(sim, api="openai", api_key_env="SIM_KEY"), lambda c: c.list_models()))
    assert ok == ["llama3:8b"]
    assert sim.requests[-1]["headers"]["authorization"] == f"Bearer {secret}"
    monkeypatch.setenv("SIM_KEY", "sk-wrong-key-000000000")
    with pytest.raises(LLMError) as ei:
        run(with_client(endpoint_for(sim, api="openai", api_key_env="SIM_KEY"), lambda c: c.list_models()))
    assert ei.value.kind == "auth" and ei.value.status_code == 401
    assert "sk-wrong" not in str(ei.value)


def test_error_details_are_redacted_and_short():
    register_secret("hunter2-secret-value")
    e = classify_status(500, json.dumps({"error": "boom hunter2-secret-value " + "x" * 1000}))
    assert e.kind == "http_5xx" and "hunter2" not in e.detail and len(e.detail) <= 300
    assert classify_status(503, '{"object":"error","message":"No available KV cache blocks"}').kind == "oom"
    assert classify_status(404, "404 page not found").kind == "http_4xx"
    assert classify_status(403, "").kind == "auth"
    with pytest.raises(ValueError):
        LLMError("nonsense", "x")


def test_connect_timeout_is_its_own_kind():
    # A listener whose accept queue is full drops SYNs: the TCP connect itself hangs.
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    port = ls.getsockname()[1]
    fillers = []
    for _ in range(3):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(s)
    time.sleep(0.1)
    from llm_upkeep.config import EndpointConfig

    ep = EndpointConfig(
        name="x", api="ollama", url=f"http://127.0.0.1:{port}", model="m", connect_timeout_s=0.3
    )
    try:
        with pytest.raises(LLMError) as ei:
            run(with_client(ep, lambda c: c.list_models()))
        assert ei.value.kind == "connect_timeout"
    finally:
        for s in fillers:
            s.close()
        ls.close()


def test_stream_must_end_with_done_or_it_is_truncated(sim_factory):
    # A server that ends the HTTP body cleanly but never sends done:true.
    sim = sim_factory(ttft_s=0.01, itl_s=0.001, tokens=5)
    ep = endpoint_for(sim, api="ollama")

    async def go():
        async with make_http_client() as http:
            c = OllamaClient(ep, http)

            async def fake_lines(*a, **kw):
                yield time.perf_counter(), json.dumps({"model": "m", "response": "a", "done": False})

            c.stream_lines = fake_lines  # the wire part is covered above; this isolates the rule
            return await collect(c)

    with pytest.raises(LLMError) as ei:
        run(go())
    assert ei.value.kind == "truncated"


def _client_with_lines(cls, ep, http, lines):
    c = cls(ep, http)

    async def fake_lines(*a, **kw):
        for line in lines:
            yield time.perf_counter(), line

    c.stream_lines = fake_lines
    return c


@pytest.mark.parametrize(
    ("cls", "lines", "kind"),
    [
        # Ollama reports a runner crash mid-stream as an {"error": ...} line in a 200 response.
        (
            OllamaClient,
            ['{"model":"m","message":{"role":"assistant","content":"a"},"done":false}',
             '{"error":"llama runner process has terminated: CUDA error: out of memory"}'],
            "oom",
        ),
        (OllamaClient, ['{"error":"an error was encountered while running the model"}'], "http_5xx"),
        (OllamaClient, ['{"model":"m","message":{"content":"a"}}'], "malformed"),
        (OllamaClient, ["[1, 2]"], "malformed"),
        (OpenAIClient, ['data: {"error": {"message": "engine dead", "code": 500}}'], "http_5xx"),
        (OpenAIClient, ['data: {"object":"error","message":"No available KV cache blocks","code":500}'], "oom"),
        (OpenAIClient, ['data: {"choices": {"index": 0}}'], "malformed"),
        (OpenAIClient, ['data: {"choices":[{"index":0,"delta":{"content":"a"}}]}', ""], "truncated"),
    ],
)  # fmt: skip
def test_errors_inside_a_200_stream_are_classified(cls, lines, kind):
    from llm_upkeep.config import EndpointConfig

    ep = EndpointConfig(name="x", api="ollama", url="http://127.0.0.1:9", model="m")

    async def go():
        async with make_http_client() as http:
            return await collect(_client_with_lines(cls, ep, http, lines))

    with pytest.raises(LLMError) as ei:
        run(go())
    assert ei.value.kind == kind


def test_openai_stream_tolerates_comments_null_choices_and_llamacpp_timings():
    from llm_upkeep.config import EndpointConfig

    ep = EndpointConfig(name="x", api="openai", url="http://127.0.0.1:9", model="m")
    lines = [
        ": keep-alive",
        "event: message",
        'data: {"choices":[{"index":0,"delta":{"role":"assistant"}}]}',
        'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}',
        'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],'
        '"timings":{"prompt_n":3,"prompt_ms":12.5,"predicted_n":1,"predicted_ms":4.0}}',
        'data: {"choices":null,"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}',
        "data: [DONE]",
    ]

    async def go():
        async with make_http_client() as http:
            return await collect(_client_with_lines(OpenAIClient, ep, http, lines))

    events = run(go())
    assert [e.text for e in events] == ["Hi", ""]
    assert events[-1].done and events[-1].usage == {"prompt_tokens": 3, "completion_tokens": 1}
    assert events[-1].server["prompt_eval_duration_s"] == pytest.approx(0.0125)
    assert events[-1].server["done_reason"] == "stop"


def test_slowdown_stretches_ttft_and_itl(sim_factory):
    sim = sim_factory(ttft_s=0.1, itl_s=0.01, tokens=11, slowdown=3.0)
    _, lines = post_lines(sim.url + "/api/generate", {"model": "llama3:8b", "prompt": "x"})
    times = [t for t, x in lines if x]
    assert on_schedule(times[0], 0.3, late=0.15)  # unslowed: 0.1 s
    assert on_schedule(times[10] - times[0], 0.3, late=0.15, early=0.04)  # unslowed: 0.1 s
