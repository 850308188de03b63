"""Exposure against real listening sockets: the kernel's socket table and harmless HTTP probes of the
simulator. A server bound to 0.0.0.0 is only ever connected to through 127.0.0.1."""

from __future__ import annotations

import asyncio
import copy

import httpx
import pytest

from llm_upkeep.security.exposure import (
    assess_exposure,
    classify_answer,
    is_loopback,
    list_listening_sockets,
    probe_endpoint_exposure,
)
from llm_upkeep.sim.llm_server import SimBehavior, SimServer
from tests.llm_fixtures import endpoint_for


def loopback_endpoint(sim: SimServer, **kw):
    ep = endpoint_for(sim, **kw)
    return ep.model_copy(update={"url": f"http://127.0.0.1:{sim.port}"})


def probe(ep, **kw):
    async def go():
        async with httpx.AsyncClient(trust_env=False) as http:
            return await probe_endpoint_exposure(ep, http, timeout=5.0, **kw)

    return asyncio.run(go())


@pytest.fixture
def wide_sim():
    """An Ollama simulator listening on every interface (as the official container does)."""
    s = SimServer(SimBehavior(version="0.17.1"), host="0.0.0.0").start()
    try:
        yield s
    finally:
        s.stop()


def test_socket_table_sees_the_wildcard_bind(wide_sim):
    socks = list_listening_sockets({wide_sim.port})
    assert socks and all(s.port == wide_sim.port for s in socks)
    assert any(s.ip == "0.0.0.0" and not s.loopback for s in socks)
    assert f"0.0.0.0:{wide_sim.port} LISTEN" in socks[0].describe()


def test_open_ollama_on_all_interfaces_gives_findings_with_evidence(wide_sim):
    before = copy.deepcopy((wide_sim.behavior.models, wide_sim.behavior.digests, wide_sim.behavior.digest))
    ep = loopback_endpoint(wide_sim, name="ollama-open")
    exp = probe(ep)
    assert exp.exposed is True and exp.product == "ollama" and exp.version == "0.17.1"
    findings = {f.id: f for f in assess_exposure(exp, ep)}
    bind = findings["exposure.bind:ollama-open"]
    assert bind.severity == "high" and any(f"0.0.0.0:{wide_sim.port} LISTEN" in e for e in bind.evidence)
    noauth = findings["exposure.no-auth:ollama-open"]
    assert noauth.severity == "high" and "POST /api/generate without credentials -> 400" in noauth.evidence[0]
    danger = findings["exposure.dangerous-routes:ollama-open"]
    assert danger.severity == "critical"
    for route in ("POST /api/create", "POST /api/push", "POST /api/pull", "DELETE /api/delete"):
        assert any(e.startswith(route) and "(reachable)" in e for e in danger.evidence), route
    # The probes changed nothing: no model created, pulled or deleted, and every body was empty.
    assert (wide_sim.behavior.models, wide_sim.behavior.digests, wide_sim.behavior.digest) == before
    mgmt = [
        r for r in wide_sim.requests if r["path"] in ("/api/create", "/api/push", "/api/pull", "/api/delete")
    ]
    assert len(mgmt) == 4 and all(r["json"] == {} for r in mgmt)
    assert all("authorization" not in r["headers"] for r in wide_sim.requests if r["path"] != "/api/version")


def test_loopback_ollama_is_low_only(sim_server):
    ep = endpoint_for(sim_server, name="local")
    exp = probe(ep)
    assert exp.exposed is False
    sevs = {f.id.split(":")[0]: f.severity for f in assess_exposure(exp, ep)}
    assert sevs == {"exposure.no-auth": "low", "exposure.dangerous-routes": "low"}


def test_proxy_that_guards_management_routes(sim_factory):
    guarded = {p: 403 for p in ("/api/create", "/api/push", "/api/pull", "/api/delete")}
    sim = sim_factory(route_status=guarded)
    ep = endpoint_for(sim, name="proxied")
    exp = probe(ep)
    assert {r.verdict for r in exp.routes} == {"auth-required"}
    assert not [f for f in assess_exposure(exp, ep) if "dangerous" in f.id]


def test_openai_server_with_key_on_loopback_has_no_findings(sim_factory, monkeypatch):
    monkeypatch.setenv("SIM_KEY", "k-abcdef123456")
    sim = sim_factory(api_key="k-abcdef123456", version="0.19.1")
    ep = endpoint_for(sim, name="vllm", api="openai", api_key_env="SIM_KEY")
    exp = probe(ep)
    assert exp.inference.verdict == "auth-required" and exp.listing.verdict == "auth-required"
    assert (exp.product, exp.version) == ("vllm", "0.19.1")
    assert assess_exposure(exp, ep) == []


def test_key_routes_outside_v1_answer_without_key_when_exposed(monkeypatch):
    monkeypatch.setenv("SIM_KEY", "k-abcdef123456")
    with SimServer(SimBehavior(api_key="k-abcdef123456"), host="0.0.0.0") as sim:
        ep = loopback_endpoint(sim, name="vllm", api="openai", api_key_env="SIM_KEY")
        findings = {f.id: f for f in assess_exposure(probe(ep), ep)}
    assert findings["exposure.bind:vllm"].severity == "low"  # a key guards inference
    unc = findings["exposure.uncovered-routes:vllm"]
    assert unc.severity == "low"
    assert any(e.startswith("GET /metrics") for e in unc.evidence)
    assert any(e.startswith("GET /version") for e in unc.evidence)


def test_configured_key_not_enforced(sim_server, monkeypatch):
    monkeypatch.setenv("SIM_KEY", "k-abcdef123456")
    ep = endpoint_for(sim_server, name="v", api="openai", api_key_env="SIM_KEY")
    ids = {f.id: f.severity for f in assess_exposure(probe(ep), ep)}
    assert ids["exposure.key-not-enforced:v"] == "medium" and ids["exposure.no-auth:v"] == "low"


def test_unreachable_endpoint_is_reported_not_raised():
    from llm_upkeep.config import EndpointConfig

    ep = EndpointConfig(name="gone", api="ollama", url="http://127.0.0.1:9", model="m")
    exp = probe(ep, dangerous=False)
    assert exp.inference.verdict == "unreachable"


@pytest.mark.parametrize(
    "status,body,verdict",
    [
        (401, '{"error":"Unauthorized"}', "auth-required"),
        (403, "forbidden", "auth-required"),
        (404, "404 page not found", "absent"),
        (404, '{"detail":"Not Found"}', "absent"),
        (404, '{"error":"model \'x\' not found"}', "reachable"),
        (400, '{"error":"model is required"}', "reachable"),
        (422, '{"detail":[]}', "reachable"),
        (405, "405 method not allowed", "absent"),
        (502, "<html>bad gateway</html>", "unknown"),
    ],
)
def test_classify_answer(status, body, verdict):
    assert classify_answer(status, body) == verdict


def test_loopback_addresses():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("10.1.2.3")
