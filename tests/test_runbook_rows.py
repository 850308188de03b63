"""Fault injection for every runbook row against the simulator: the right diagnosis, the right
fix, and a verified recovery or a clear escalation. No Prefect here: the engine runs in-process
with an approver callback standing in for the person in the UI."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import pytest

from llm_upkeep.restart import read_ledger
from llm_upkeep.runbook.engine import Approval, run_runbook
from llm_upkeep.sim.llm_server import SimServer
from llm_upkeep.sim.slack_sink import SlackSink
from llm_upkeep.telemetry import collect_gpus
from tests.fakes import pynvml as fake_nvml
from tests.runbook_fixtures import healthy_behavior, restart_sim, runbook_config, sim_endpoint


def run(cfg, **kw):
    return asyncio.run(run_runbook(cfg, **kw))


def only(result, symptom):
    incs = [i for i in result.incidents if i.symptom == symptom]
    assert len(incs) == 1, [(i.symptom, i.target) for i in result.incidents]
    return incs[0]


def results_by_action(inc):
    return {r.action: r for r in inc.results}


@pytest.fixture
def sim():
    s = SimServer(healthy_behavior()).start()
    yield s
    s.stop()


@pytest.fixture
def vllm():
    s = SimServer(healthy_behavior(model="meta-llama/Llama-3.1-8B-Instruct")).start()
    yield s
    s.stop()


def approve_all_plans():
    seen = []

    async def approver(plans, incidents):
        seen.extend(p.id for p in plans)
        return Approval({p.id for p in plans}, "approved by the test")

    approver.seen = seen
    return approver


# ---------------------------------------------------------------- healthy


def test_healthy_servers_give_no_incident(tmp_path, sim, vllm, hooks):
    restart = hooks("restart")
    cfg = runbook_config(tmp_path, [sim_endpoint(sim), sim_endpoint(vllm, "vllm", api="openai")],
                         restart={"command": restart.command("{target}")})  # fmt: skip
    res = run(cfg)
    assert res.status == "ok" and res.incidents == []
    assert res.to_json() == {"flow": "runbook", "status": "ok", "incidents": []}
    assert restart.calls == []


# ---------------------------------------------------------------- slow TTFT: restart


def test_slow_ttft_is_a_leak_restart_recovers_and_ledger_records_it(tmp_path, sim, hooks):
    sim.behavior.slow_first_token_s = 1.0
    sim.set_fault("slow_first_token")
    restart = hooks("restart", on_run=lambda argv: restart_sim(sim, fault=None))
    cfg = runbook_config(tmp_path, [sim_endpoint(sim)], health={"ttft_alert_s": 0.5},
                         restart={"command": restart.command("{target}")})  # fmt: skip
    res = run(cfg)
    inc = only(res, "slow_ttft")
    assert inc.diagnosis.cause == "Memory leak in the serving process"
    assert any("TTFT 1." in e and "> 0.5 s" in e for e in inc.diagnosis.evidence)
    assert results_by_action(inc)["restart"].status == "done"
    assert restart.calls == [["sim"]]
    assert inc.outcome == "recovered" and inc.recovered is True and res.status == "recovered"
    ledger = read_ledger(cfg.state_path)
    assert [r["decision"] for r in ledger if not r.get("event")] == ["executed"]
    assert [r["recovered"] for r in ledger if r.get("event") == "recovery"] == [True]
    kinds = [e.kind for e in inc.timeline]
    assert kinds[0] == "symptom" and "action" in kinds and kinds[-2:] == ["verification", "result"]


def test_restart_over_budget_waits_for_approval_and_escalates_when_denied(tmp_path, sim, hooks):
    sim.behavior.slow_first_token_s = 1.0
    sim.set_fault("slow_first_token")
    restart = hooks("restart", on_run=lambda argv: restart_sim(sim, fault=None))
    cfg = runbook_config(tmp_path, [sim_endpoint(sim)], health={"ttft_alert_s": 0.5},
                         restart={"command": restart.command("{target}"), "max_per_day": 0})  # fmt: skip
    res = run(cfg)  # no approver: nobody can approve
    inc = only(res, "slow_ttft")
    assert inc.plans[0].risky and "BEYOND the daily budget" in inc.plans[0].description
    r = results_by_action(inc)["restart"]
    assert r.status == "not_approved" and "over the restart budget (0/0" in r.detail
    assert inc.outcome == "escalated" and res.status == "escalated" and restart.calls == []
    assert any(e.kind == "approval" and "NOT approved" in e.text for e in inc.timeline)


def test_restart_beyond_budget_runs_once_approved(tmp_path, sim, hooks):
    sim.behavior.slow_first_token_s = 1.0
    sim.set_fault("slow_first_token")
    restart = hooks("restart", on_run=lambda argv: restart_sim(sim, fault=None))
    cfg = runbook_config(tmp_path, [sim_endpoint(sim)], health={"ttft_alert_s": 0.5},
                         restart={"command": restart.command("{target}"), "max_per_day": 0})  # fmt: skip
    approver = approve_all_plans()
    res = run(cfg, approver=approver)
    inc = only(res, "slow_ttft")
    assert approver.seen == ["restart:sim"]
    assert inc.outcome == "recovered" and restart.calls == [["sim"]]
    executed = [r for r in read_ledger(cfg.state_path) if r["decision"] == "executed" and not r.get("event")]
    assert len(executed) == 1 and "approved beyond budget" in executed[0]["reason"]


def test_dry_run_describes_and_changes_nothing(tmp_path, sim, hooks):
    sim.behavior.slow_first_token_s = 1.0
    sim.set_fault("slow_first_token")
    restart = hooks("restart", on_run=lambda argv: restart_sim(sim, fault=None))
    cfg = runbook_config(tmp_path, [sim_endpoint(sim)], health={"ttft_alert_s": 0.5},
                         restart={"command": restart.command("{target}")})  # fmt: skip
    res = run(cfg, dry_run=True)
    inc = only(res, "slow_ttft")
    assert res.status == "dry_run" and inc.outcome == "dry_run"
    assert results_by_action(inc)["restart"].status == "dry_run"
    assert inc.summary.startswith("dry run: would restart sim")
    time.sleep(0.1)
    assert restart.calls == []
    assert [r["decision"] for r in read_ledger(cfg.state_path)] == ["dry_run"]


# ---------------------------------------------------------------- connection refused: logs, restart, limit


def test_connection_refused_collects_logs_restarts_and_proposes_restart_limit(tmp_path, sim, hooks):
    log = tmp_path / "ollama.log"
    log.write_text("".join(f"time=2026-11-28T03:00:{i:02d} level=INFO msg=\"request {i}\"\n" for i in range(30))
                   + "panic: runtime error: invalid memory address or nil pointer dereference\n")  # fmt: skip
    sim.set_fault("refused")
    restart = hooks("restart", on_run=lambda argv: restart_sim(sim, fault=None))
    cfg = runbook_config(
        tmp_path, [sim_endpoint(sim)],
        restart={"command": restart.command("{target}")},
        runbook={"log_tail_lines": 10, "logs": [{"name": "ollama", "kind": "server", "path": str(log)}]},
    )  # fmt: skip
    res = run(cfg)
    inc = only(res, "connection_refused")
    assert inc.diagnosis.cause.startswith("Process crashed")
    assert any("panic: runtime error" in e for e in inc.diagnosis.evidence)
    by = results_by_action(inc)
    assert by["collect_logs"].status == "done"
    assert len(by["collect_logs"].data["logs"]["ollama"]) == 10
    assert by["restart"].status == "done"
    dropin = by["propose_restart_limit"]
    assert dropin.status == "proposed" and dropin.data["dropin_path"].startswith(
        "/etc/systemd/system/ollama.service.d/"
    )
    assert "StartLimitBurst=10" in dropin.data["dropin"] and "Restart=always" in dropin.data["dropin"]
    assert inc.outcome == "recovered"
    from llm_upkeep.runbook.incident import render_report

    md = render_report(res)
    assert "StartLimitIntervalSec=600" in md and "panic: runtime error" in md


def test_hung_server_is_restarted(tmp_path, sim, hooks):
    sim.set_fault("hang")
    restart = hooks("restart", on_run=lambda argv: restart_sim(sim, fault=None))
    cfg = runbook_config(tmp_path, [sim_endpoint(sim, timeout_s=1.0, read_timeout_s=0.5)],
                         restart={"command": restart.command("{target}")})  # fmt: skip
    res = run(cfg)
    inc = only(res, "hung")
    assert "hung" in inc.diagnosis.cause and results_by_action(inc)["restart"].status == "done"
    assert inc.outcome == "recovered"


def test_http_500_is_escalated_with_the_log_and_truncated_answer_restarts(tmp_path, sim, hooks):
    log = tmp_path / "srv.log"
    log.write_text('level=ERROR msg="llama runner process has terminated: exit status 2"\n')
    sim.set_fault("http_500")
    restart = hooks("restart", on_run=lambda argv: restart_sim(sim, fault=None))
    logs = [{"name": "srv", "kind": "server", "path": str(log)}]
    cfg = runbook_config(tmp_path, [sim_endpoint(sim)], restart={"command": restart.command("{target}")},
                         runbook={"logs": logs})  # fmt: skip
    inc = only(run(cfg), "server_error")
    assert inc.outcome == "escalated" and "escalate" in results_by_action(inc) and restart.calls == []
    assert any("runner process has terminated" in e for e in inc.diagnosis.evidence)

    sim.set_fault("truncated")
    inc = only(run(cfg), "server_error")
    assert inc.diagnosis.cause == "Process crashed mid-response"
    assert results_by_action(inc)["restart"].status == "done" and inc.outcome == "recovered"


# ---------------------------------------------------------------- OOM: concurrency / context


def test_oom_proposes_lower_concurrency_and_context_by_default(tmp_path, sim, hooks):
    sim.set_fault("oom")
    hook = hooks("setting")
    cfg = runbook_config(tmp_path, [sim_endpoint(sim)],
                         runbook={"setting_hook": hook.command("{target}", "{setting}", "{value}")})  # fmt: skip
    res = run(cfg)
    inc = only(res, "oom")
    assert inc.diagnosis.cause.startswith("KV cache overflow")
    assert any("out of memory" in e for e in inc.diagnosis.evidence)
    proposals = {r.data["setting"]: r.data["value"] for r in inc.results if r.action == "set_setting"}
    assert proposals == {"OLLAMA_NUM_PARALLEL": 2, "OLLAMA_CONTEXT_LENGTH": 4096}
    assert all(r.status == "proposed" for r in inc.results if r.action == "set_setting")
    assert inc.outcome == "escalated" and hook.calls == []


def test_oom_on_vllm_applies_settings_through_the_hook_once_allowed(tmp_path, vllm, hooks):
    vllm.set_fault("oom")
    vllm.behavior.context_length = 16384
    hook = hooks("setting", on_run=lambda argv: restart_sim(vllm, fault=None))
    cfg = runbook_config(
        tmp_path, [sim_endpoint(vllm, "vllm", api="openai")],
        runbook={"setting_hook": hook.command("{target}", "{setting}", "{value}"), "apply_settings": True,
                 "allow_risky_fixes": True},
    )  # fmt: skip
    res = run(cfg)
    inc = only(res, "oom")
    assert sorted(hook.calls) == [["vllm", "--max-model-len", "8192"], ["vllm", "--max-num-seqs", "2"]]
    assert inc.outcome == "recovered" and all(
        r.status == "done" for r in inc.results if r.action == "set_setting"
    )


# ---------------------------------------------------------------- saturated GPU, low tokens/s


@pytest.fixture
def busy_gpu(monkeypatch):
    fake_nvml.configure(devices=[fake_nvml.FakeDevice(gpu_util=100, memory_used=70 * 1024**3)])
    return lambda: collect_gpus(fake_nvml)


def test_saturated_gpu_with_low_tps_proposes_shorter_context(tmp_path, vllm, busy_gpu):
    vllm.behavior.itl_s = 0.1  # 10 tokens/s
    vllm.behavior.kv_cache_usage = 0.99
    cfg = runbook_config(tmp_path, [sim_endpoint(vllm, "vllm", api="openai", timeout_s=10.0)],
                         runbook={"low_tokens_per_s": 20.0, "probe_max_tokens": 8})  # fmt: skip
    res = run(cfg, gpu_reader=busy_gpu)
    inc = only(res, "saturated_low_tps")
    assert inc.diagnosis.cause.startswith("Context too long")
    ev = " | ".join(inc.diagnosis.evidence)
    assert "GPU utilization 100%" in ev and "KV-cache usage 99%" in ev and "tokens/s < 20" in ev
    props = {r.data["setting"]: r.data["value"] for r in inc.results if r.status == "proposed"}
    assert props == {"--max-model-len": 4096, "--max-num-seqs": 2}
    assert inc.outcome == "escalated" and "max_tokens" in results_by_action(inc)["escalate"].detail


def test_saturated_low_tps_recovers_when_the_hook_applies_the_setting(tmp_path, vllm, busy_gpu, hooks):
    vllm.behavior.itl_s = 0.1
    vllm.behavior.kv_cache_usage = 0.99

    def applied(argv):
        restart_sim(vllm, itl_s=0.005, kv_cache_usage=0.2)
        fake_nvml.device(0).gpu_util = 40

    hook = hooks("setting", on_run=applied)
    cfg = runbook_config(
        tmp_path, [sim_endpoint(vllm, "vllm", api="openai", timeout_s=10.0)],
        runbook={"low_tokens_per_s": 20.0, "probe_max_tokens": 8, "apply_settings": True, "allow_risky_fixes": True,
                 "setting_hook": hook.command("{target}", "{setting}", "{value}")},
    )  # fmt: skip
    inc = only(run(cfg, gpu_reader=busy_gpu), "saturated_low_tps")
    assert ["vllm", "--max-model-len", "4096"] in hook.calls
    assert inc.outcome == "recovered" and "tokens/s" in (inc.verification or "")


def test_slow_decode_without_saturation_is_not_this_row(tmp_path, vllm):
    vllm.behavior.itl_s = 0.1
    cfg = runbook_config(tmp_path, [sim_endpoint(vllm, "vllm", api="openai", timeout_s=10.0)],
                         runbook={"low_tokens_per_s": 20.0, "probe_max_tokens": 8})  # fmt: skip
    assert run(cfg).incidents == []


# ---------------------------------------------------------------- gibberish: re-pull and verify


def test_gibberish_repulls_the_model_and_the_reprobe_is_clean(tmp_path, sim, watchers):
    sim.set_fault("gibberish")
    pulls = watchers(sim, lambda r: r["path"] == "/api/pull", lambda r: setattr(sim.behavior, "fault", None))
    cfg = runbook_config(tmp_path, [sim_endpoint(sim)], runbook={"allow_risky_fixes": True})
    res = run(cfg)
    inc = only(res, "gibberish")
    assert inc.diagnosis.cause == "Corrupted model file"
    assert any("bad_chars" in e or "script_mix" in e for e in inc.diagnosis.evidence)
    r = results_by_action(inc)["repull_model"]
    assert r.status == "done" and "pulled llama3:8b" in r.detail and "unloaded" in r.detail
    assert "verification:" in r.detail  # the lifecycle's checksum verification ran (or says why not)
    assert len(pulls.hits) == 1 and inc.outcome == "recovered" and "canary passed" in inc.verification


def test_gibberish_repull_waits_for_approval(tmp_path, sim):
    sim.set_fault("gibberish")
    cfg = runbook_config(tmp_path, [sim_endpoint(sim)])
    res = run(cfg)  # nobody approves
    inc = only(res, "gibberish")
    assert results_by_action(inc)["repull_model"].status == "not_approved"
    assert not any(r["path"] == "/api/pull" for r in sim.requests)
    assert inc.outcome == "escalated" and "needs approval" in inc.summary


def test_gibberish_repull_failure_escalates(tmp_path, sim):
    sim.set_fault("gibberish")
    sim.behavior.pull_error = "digest mismatch, file must be downloaded again"
    cfg = runbook_config(tmp_path, [sim_endpoint(sim)], runbook={"allow_risky_fixes": True})
    inc = only(run(cfg), "gibberish")
    r = results_by_action(inc)["repull_model"]
    assert r.status == "failed" and "digest mismatch" in r.detail and inc.outcome == "escalated"


def test_gibberish_on_an_openai_server_escalates_to_redownload(tmp_path, vllm):
    vllm.set_fault("gibberish")
    inc = only(run(runbook_config(tmp_path, [sim_endpoint(vllm, "vllm", api="openai")])), "gibberish")
    assert "verify_model" in results_by_action(inc) and inc.outcome == "escalated"
    assert "re-download the model files" in inc.summary


def test_wrong_canary_answer_without_gibberish_is_canary_failed(tmp_path, sim):
    sim.behavior.answers["capital of France"] = "London."
    inc = only(run(runbook_config(tmp_path, [sim_endpoint(sim)])), "canary_failed")
    assert "'London.'" in inc.diagnosis.evidence[0]
    assert "verify_model" in results_by_action(inc) and inc.outcome == "escalated"


# ---------------------------------------------------------------- cold load, CPU offload


def test_cold_load_preloads_the_model_and_is_not_called_a_leak(tmp_path, sim, watchers):
    sim.behavior.load_duration_s = 1.0

    def loaded(r):
        sim.behavior.load_duration_s = 0.0

    is_load = lambda r: r["path"] == "/api/generate" and (r["json"] or {}).get("keep_alive") not in (None, 0)  # noqa: E731
    loads = watchers(sim, is_load, loaded)
    cfg = runbook_config(tmp_path, [sim_endpoint(sim)], health={"ttft_alert_s": 0.8},
                         runbook={"cold_load_s": 0.5, "keep_alive": "30m"})  # fmt: skip
    res = run(cfg)
    assert [i.symptom for i in res.incidents] == ["cold_load"]  # TTFT minus load is fine: no leak
    inc = res.incidents[0]
    assert results_by_action(inc)["warm_model"].status == "done"
    assert loads.hits and loads.hits[0]["json"]["keep_alive"] == "30m"
    assert inc.outcome == "recovered" and "load_duration 0.00 s" in inc.verification


def test_cpu_offload_reloads_the_model(tmp_path, sim, watchers):
    sim.behavior.vram_fraction = 0.6
    unloads = watchers(sim, lambda r: (r["json"] or {}).get("keep_alive") == 0,
                       lambda r: setattr(sim.behavior, "vram_fraction", 1.0))  # fmt: skip
    inc = only(run(runbook_config(tmp_path, [sim_endpoint(sim)])), "cpu_offload")
    assert "60% in VRAM" in inc.diagnosis.evidence[0]
    assert results_by_action(inc)["reload_model"].status == "done" and unloads.hits
    assert inc.outcome == "recovered" and "100% in VRAM" in inc.verification


def test_cpu_offload_that_persists_escalates_with_a_context_proposal(tmp_path, sim):
    sim.behavior.vram_fraction = 0.5
    inc = only(
        run(runbook_config(tmp_path, [sim_endpoint(sim)], runbook={"verify_timeout_s": 1.0})), "cpu_offload"
    )
    assert inc.outcome == "escalated" and "reload_model did not help" in inc.summary
    assert any(r.action == "set_setting" and r.status == "proposed" for r in inc.results)


# ---------------------------------------------------------------- host rows: disk, GPU XID


def test_disk_nearly_full_lists_models_and_escalates(tmp_path, sim):
    cfg = runbook_config(tmp_path, [sim_endpoint(sim)], health={"disk_paths": [str(tmp_path)]},
                         runbook={"disk_alert_percent": 0.001})  # fmt: skip
    inc = only(run(cfg), "disk_full")
    assert inc.target == str(tmp_path) and "% used > 0.001%" in inc.diagnosis.evidence[0]
    assert results_by_action(inc)["list_models"].status == "done"
    assert "llama3:8b" in results_by_action(inc)["list_models"].detail
    assert inc.outcome == "escalated" and "remove unused model versions" in inc.summary


def _kern_line(ts: float, code: int, pid: int = 4242) -> str:
    stamp = datetime.fromtimestamp(ts).strftime("%b %e %H:%M:%S")
    return (
        f"{stamp} gpu-host kernel: NVRM: Xid (PCI:0000:3b:00): {code}, pid={pid}, name=ollama, Ch 00000010\n"
    )


def test_gpu_fallen_off_the_bus_escalates_and_old_xids_are_ignored(tmp_path, sim, hooks):
    kern = tmp_path / "kern.log"
    now = time.time()
    kern.write_text(_kern_line(now - 3 * 86400, 13) + "Nov  1 00:00:00 gpu-host kernel: usb 1-1: new device\n"
                    + _kern_line(now - 60, 79))  # fmt: skip
    restart = hooks("restart")
    cfg = runbook_config(tmp_path, [sim_endpoint(sim)], restart={"command": restart.command("{target}")},
                         runbook={"logs": [{"name": "kernel", "kind": "kernel", "path": str(kern)}]})  # fmt: skip
    inc = only(run(cfg), "gpu_xid")
    assert inc.target == "gpu:0000:3b:00" and "79" in inc.diagnosis.cause and "13" not in inc.diagnosis.cause
    assert inc.outcome == "escalated" and "the GPU itself needs attention" in inc.summary
    assert results_by_action(inc)["collect_logs"].status == "done" and restart.calls == []


def test_application_level_xid_restarts_the_serving_process(tmp_path, sim, hooks):
    kern = tmp_path / "kern.log"
    kern.write_text(_kern_line(time.time() - 30, 13))
    restart = hooks("restart", on_run=lambda argv: restart_sim(sim))
    cfg = runbook_config(tmp_path, [sim_endpoint(sim)], restart={"command": restart.command("{target}")},
                         runbook={"logs": [{"name": "kernel", "kind": "kernel", "path": str(kern)}]})  # fmt: skip
    inc = only(run(cfg), "gpu_xid")
    assert results_by_action(inc)["restart"].status == "done" and restart.calls == [["sim"]]
    assert inc.outcome == "recovered"


def test_one_restart_per_endpoint_even_when_two_incidents_ask(tmp_path, sim, hooks):
    kern = tmp_path / "kern.log"
    kern.write_text(_kern_line(time.time() - 30, 13))
    sim.behavior.slow_first_token_s = 1.0
    sim.set_fault("slow_first_token")
    restart = hooks("restart", on_run=lambda argv: restart_sim(sim, fault=None))
    cfg = runbook_config(tmp_path, [sim_endpoint(sim)], health={"ttft_alert_s": 0.5},
                         restart={"command": restart.command("{target}")},
                         runbook={"logs": [{"name": "kernel", "kind": "kernel", "path": str(kern)}]})  # fmt: skip
    res = run(cfg)
    assert {i.symptom for i in res.incidents} == {"slow_ttft", "gpu_xid"}
    assert restart.wait_calls(1) == [["sim"]]
    assert all(i.outcome == "recovered" for i in res.incidents)


# ---------------------------------------------------------------- Slack: one thread per incident


def test_slack_bot_token_posts_one_thread_per_incident(tmp_path, sim, monkeypatch, hooks):
    sim.set_fault("refused")
    restart = hooks("restart", on_run=lambda argv: restart_sim(sim, fault=None))
    with SlackSink() as sink:
        monkeypatch.setenv("TEST_RUNBOOK_SLACK_TOKEN", "xoxb-runbook-test-token-123")
        cfg = runbook_config(tmp_path, [sim_endpoint(sim)], restart={"command": restart.command("{target}")},
                             alerts={"slack_token_env": "TEST_RUNBOOK_SLACK_TOKEN", "slack_channel": "#ops",
                                     "slack_base_url": sink.api_url})  # fmt: skip
        inc = only(run(cfg), "connection_refused")
        msgs = sink.messages
    first, replies = msgs[0], msgs[1:]
    assert not first.get("thread_ts") and "connection_refused on sim" in first["text"]
    assert (
        inc.slack_ts == first["ts"] and len(replies) == len(inc.results) + 2
    )  # actions, verification, outcome
    assert all(m["thread_ts"] == first["ts"] for m in replies)
    assert "RECOVERED" in replies[-1]["text"]


def test_slack_webhook_posts_one_message_per_incident(tmp_path, sim, monkeypatch):
    sim.set_fault("oom")
    with SlackSink() as sink:
        monkeypatch.setenv("TEST_RUNBOOK_WEBHOOK", sink.webhook_url)
        cfg = runbook_config(
            tmp_path, [sim_endpoint(sim)], alerts={"slack_webhook_url_env": "TEST_RUNBOOK_WEBHOOK"}
        )
        run(cfg)
        msgs = sink.messages
    assert len(msgs) == 1 and msgs[0]["kind"] == "webhook"
    assert "oom on sim" in msgs[0]["text"] and "ESCALATED" in msgs[0]["text"]
    assert "localsecretwebhookkey" not in str(msgs[0]["blocks"])


def test_docs_table_is_the_rows_table():
    from pathlib import Path

    from llm_upkeep.runbook.rows import SYMPTOMS, render_rows_table

    doc = (Path(__file__).resolve().parent.parent / "docs" / "runbook.md").read_text()
    assert render_rows_table() in doc
    required = {"slow_ttft", "saturated_low_tps", "oom", "gibberish", "connection_refused", "cold_load",
                "cpu_offload", "disk_full", "gpu_xid"}  # fmt: skip
    assert required <= set(SYMPTOMS)


def test_a_thinking_model_that_has_not_answered_yet_is_not_a_failed_canary(tmp_path, sim):
    sim.behavior.thinking = True
    sim.behavior.thinking_tokens = 30  # more than canary_max_tokens (24): the canary gets no content
    res = run(runbook_config(tmp_path, [sim_endpoint(sim)]))
    assert res.incidents == []


def test_cpu_only_host_is_not_an_offload_but_a_gpu_host_is(tmp_path, sim, busy_gpu):
    sim.behavior.vram_fraction = 0.0
    cfg = runbook_config(tmp_path, [sim_endpoint(sim)], runbook={"verify_timeout_s": 0.5})
    assert run(cfg).incidents == []  # no GPU here: the model runs on the CPU by design
    assert (
        only(run(cfg, gpu_reader=busy_gpu), "cpu_offload")
        .diagnosis.evidence[0]
        .startswith("llama3:8b: 0% in VRAM")
    )


def test_secrets_in_logs_never_reach_the_report_or_json(tmp_path, sim):
    from llm_upkeep.runbook.incident import render_report

    log = tmp_path / "srv.log"
    log.write_text("Authorization: Bearer sk-live-0123456789abcdef\ncudaMalloc failed: out of memory\n")
    cfg = runbook_config(tmp_path, [sim_endpoint(sim)],
                         runbook={"logs": [{"name": "srv", "kind": "server", "path": str(log)}]})  # fmt: skip
    res = run(cfg)
    inc = only(res, "oom")  # found in the log although the probe itself succeeded
    text = render_report(res) + str(res.to_json()) + str(inc.timeline)
    assert "sk-live-0123456789abcdef" not in text and "cudaMalloc failed" in text
