"""Server /metrics: the four dialects parsed from recorded expositions (served by the simulator
over HTTP), classified failures, the checks and their thresholds."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from llm_upkeep.checks import Status
from llm_upkeep.servermetrics.checks import check_reading, counter_increase
from llm_upkeep.servermetrics.config import ServerMetricsConfig
from llm_upkeep.servermetrics.parse import MetricsParseError, ServerMetrics, parse_exposition
from llm_upkeep.servermetrics.scrape import scrape_metrics
from llm_upkeep.sim.metrics_text import render_metrics_text
from tests.llm_fixtures import endpoint_for

FIXTURES = Path(__file__).parent / "fixtures" / "server_metrics"

# file -> (dialect, kv ratio, running, waiting, preemptions, prompt tokens, generated tokens, kv source)
EXPECTED = {
    "vllm_v0.prom": ("vllm", 0.4375, 12, 3, 7, 1_284_736, 402_113, "vllm:gpu_cache_usage_perc"),
    "vllm_v1.prom": ("vllm", 0.9612, 48, 17, 212, 8_432_911, 2_113_408, "vllm:kv_cache_usage_perc"),
    "tgi.prom": ("tgi", None, 32, 9, None, 18_833_411, 7_401_233, None),
    "sglang.prom": ("sglang", 0.28, 162, 2826, None, 8_128_902, 7_557_572, "sglang:token_usage"),
    "llamacpp.prom": ("llamacpp", 0.3125, 1, 2, None, 6886, 3469, "llamacpp:kv_cache_usage_ratio"),
}


def recorded(name: str) -> str:
    return (FIXTURES / name).read_text()


def facts(m: ServerMetrics) -> tuple:
    return (m.dialect, m.kv_cache_usage, m.running, m.waiting, m.preemptions, m.prompt_tokens,
            m.generation_tokens, m.sources.get("kv_cache_usage"))  # fmt: skip


def scrape(sim, **kw):
    async def go():
        async with httpx.AsyncClient() as http:
            return await scrape_metrics(endpoint_for(sim, "srv", api="openai"), http, **kw)

    return asyncio.run(go())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_dialect_parsed_from_its_recording_over_http(sim_factory, name):
    sim = sim_factory(metrics_text=recorded(name))
    r = scrape(sim)
    assert r.status == "ok", r.detail
    assert facts(r.metrics) == EXPECTED[name]
    assert facts(parse_exposition(recorded(name))) == EXPECTED[name]


def test_every_recording_has_a_source_note():
    notes = (FIXTURES / "SOURCES.md").read_text()
    for name in EXPECTED:
        assert f"`{name}`" in notes and "http" in notes


def test_new_vllm_name_wins_over_the_deprecated_one():
    both = recorded("vllm_v1.prom") + (
        "# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. DEPRECATED\n# TYPE vllm:gpu_cache_usage_perc gauge\n"
        'vllm:gpu_cache_usage_perc{engine="0",model_name="unsloth/Llama-3.2-1B-Instruct"} 0.1\n'
    )
    m = parse_exposition(both)
    assert m.kv_cache_usage == 0.9612 and m.sources["kv_cache_usage"] == "vllm:kv_cache_usage_perc"


def test_two_engines_sum_load_and_take_the_fuller_cache():
    text = (
        recorded("vllm_v1.prom")
        .replace(
            'vllm:num_requests_waiting{engine="0",model_name="unsloth/Llama-3.2-1B-Instruct"} 17.0',
            'vllm:num_requests_waiting{engine="0",model_name="unsloth/Llama-3.2-1B-Instruct"} 17.0\n'
            'vllm:num_requests_waiting{engine="1",model_name="unsloth/Llama-3.2-1B-Instruct"} 5.0',
        )
        .replace(
            'vllm:kv_cache_usage_perc{engine="0",model_name="unsloth/Llama-3.2-1B-Instruct"} 0.9612',
            'vllm:kv_cache_usage_perc{engine="0",model_name="unsloth/Llama-3.2-1B-Instruct"} 0.9612\n'
            'vllm:kv_cache_usage_perc{engine="1",model_name="unsloth/Llama-3.2-1B-Instruct"} 0.2',
        )
    )
    m = parse_exposition(text)
    assert m.waiting == 22 and m.kv_cache_usage == 0.9612


def test_simulator_rewrites_chosen_samples_only():
    text = render_metrics_text(recorded("vllm_v0.prom"), {"vllm:gpu_cache_usage_perc": 0.97,
                                                          "vllm:num_requests_waiting": 40})  # fmt: skip
    m = parse_exposition(text)
    assert (m.kv_cache_usage, m.waiting, m.running) == (0.97, 40, 12)


@pytest.mark.parametrize(
    "body,fragment",
    [
        ("<html><body>502 Bad Gateway</body></html>", "not Prometheus text format"),
        ('vllm:num_requests_running{model_name="x" 3\n', "not Prometheus text format"),
    ],
)
def test_a_body_that_is_not_an_exposition_is_a_classified_error(sim_factory, body, fragment):
    sim = sim_factory(metrics_text=body)
    r = scrape(sim)
    assert r.status == "error" and fragment in r.detail and r.metrics is None


def test_oversized_missing_and_ollama_metrics(sim_factory):
    sim = sim_factory(metrics_text=recorded("vllm_v1.prom"))
    big = scrape(sim, max_bytes=500)
    assert big.status == "error" and "larger than 500 bytes" in big.detail
    gone = sim_factory(route_status={"/metrics": 404})
    assert scrape(gone).status == "absent"

    async def ollama():
        async with httpx.AsyncClient() as http:
            return await scrape_metrics(endpoint_for(sim, "o", api="ollama"), http)

    r = asyncio.run(ollama())
    assert r.status == "absent" and "Ollama" in r.detail


def test_hanging_metrics_times_out_within_its_budget(sim_factory):
    sim = sim_factory(fault="hang")
    import time

    t0 = time.monotonic()
    r = scrape(sim, timeout_s=0.3)
    took = time.monotonic() - t0
    assert r.status == "error" and "timeout" in r.detail
    assert took < 0.3 * 10  # a bound on the budget, not on speed: without it the scrape hangs forever


def by(checks, name):
    (c,) = [c for c in checks if c.check == name]
    return c


def test_checks_thresholds_from_config(sim_factory):
    cfg = ServerMetricsConfig(kv_cache_warn_percent=90, kv_cache_alert_percent=99, waiting_warn=10,
                              waiting_alert=100)  # fmt: skip
    sim = sim_factory(metrics_text=recorded("vllm_v1.prom"))
    checks = check_reading(scrape(sim), cfg)
    kv = by(checks, "kv_cache_usage")
    assert (kv.status, kv.value, kv.unit) == (Status.WARN, 96.12, "%")
    assert by(checks, "requests_waiting").status == Status.WARN
    assert by(checks, "requests_running").value == 48
    assert by(checks, "server_tokens").value == 2_113_408
    sim.behavior.metrics_values = {"vllm:kv_cache_usage_perc": 0.995, "vllm:num_requests_waiting": 150}
    checks = check_reading(scrape(sim), cfg)
    assert by(checks, "kv_cache_usage").status == Status.ALERT
    assert by(checks, "requests_waiting").status == Status.ALERT
    sim.behavior.metrics_values = {"vllm:kv_cache_usage_perc": 0.5, "vllm:num_requests_waiting": 0}
    checks = check_reading(scrape(sim), cfg)
    assert {c.status for c in checks} == {Status.OK}


def test_preemptions_are_an_increase_and_a_drop_is_a_restart():
    cfg = ServerMetricsConfig(preemptions_warn=10)
    m = parse_exposition(recorded("vllm_v1.prom"))  # counter at 212
    from llm_upkeep.servermetrics.scrape import MetricsReading

    r = MetricsReading(endpoint="v", status="ok", metrics=m)
    assert by(check_reading(r, cfg, None), "preemptions").value == 0  # first reading: nothing to compare
    assert (
        by(check_reading(r, cfg, m.model_copy(update={"preemptions": 205})), "preemptions").status
        == Status.OK
    )
    c = by(check_reading(r, cfg, m.model_copy(update={"preemptions": 150})), "preemptions")
    assert (c.value, c.status) == (62, Status.WARN)
    c = by(check_reading(r, cfg, m.model_copy(update={"preemptions": 900})), "preemptions")
    assert c.value == 212  # restarted: everything since its start is new
    assert counter_increase(None, 5) == 0 and counter_increase(3, 1) == 1


def test_config_orders_thresholds():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="kv_cache_warn_percent"):
        ServerMetricsConfig(kv_cache_warn_percent=99.5, kv_cache_alert_percent=99)


def test_parse_error_is_raised_for_garbage():
    with pytest.raises(MetricsParseError):
        parse_exposition("this is { not metrics\n")


def test_real_llamacpp_server_has_no_metrics_and_says_so(llamacpp_server):
    """llama-cpp-python's server (the only llama.cpp server that builds here) has no /metrics route
    (llama.cpp's own `llama-server --metrics` has; its exposition is tests/fixtures/.../llamacpp.prom):
    the scrape reports it absent, and the check is skipped with the reason, not failed."""
    from llm_upkeep.config import EndpointConfig

    ep = EndpointConfig(name="llamacpp", api="openai", url=llamacpp_server.url, model="tiny")

    async def go():
        async with httpx.AsyncClient() as http:
            return await scrape_metrics(ep, http)

    r = asyncio.run(go())
    assert r.status == "absent" and "404" in r.detail, r
    (c,) = check_reading(r, ServerMetricsConfig())
    assert c.status == Status.SKIPPED and "exports no /metrics" in c.detail


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_runbook_evidence_reads_every_dialect(name):
    """The runbook's observation reads the same facts (its client parses /metrics with the same parser)."""
    from llm_upkeep.clients.base import parse_prometheus
    from llm_upkeep.runbook.observe import Observation

    obs = Observation.model_construct(metrics=parse_prometheus(recorded(name)))
    _dialect, kv, running, waiting, *_ = EXPECTED[name]
    assert (obs.kv_cache_usage, obs.running, obs.waiting) == (kv, running, waiting)


def test_health_report_says_what_to_do_about_a_full_kv_cache():
    from llm_upkeep.alerts import runbook_hint
    from llm_upkeep.checks import CheckResult

    for check in ("kv_cache_usage", "requests_waiting", "preemptions", "gpu_memory_trend"):
        assert runbook_hint(CheckResult(check=check, target="v", status=Status.WARN)), check
