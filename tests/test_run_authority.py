"""Run parameters cannot widen what the host's config allows: each refusal through a real flow run.

The runs go to the Prefect test server; a refused run is Failed with a message naming what was
refused, and nothing it asked for happened (no pull, no copy, no restart, no switch). The
config_path refusal needs a deployment's run (a direct call is the operator at the shell): a
deployment is registered, a run created from it with the parameter, and executed by Prefect's
flow engine in this process, as a worker's subprocess would.
"""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from llm_upkeep.models.store import blob_path, read_manifest
from tests.models_fixtures import ALIAS, CANDIDATE, Approver

pytestmark = pytest.mark.prefect


def evaluate_state(lab, **kw):
    from flows.evaluate_model import evaluate_model

    kw.setdefault("candidate", CANDIDATE)
    return asyncio.run(
        evaluate_model(endpoint="prod", config_path=str(lab.config_path), return_state=True, **kw)
    )


def failure(state) -> str:
    assert state.is_failed(), f"expected a refused (failed) run, got {state.type}: {state.message}"
    return state.message or ""


def requests_to(sim, path: str) -> list:
    return [q for q in sim.requests if q["path"] == path]


def test_approval_parameter_cannot_loosen_the_config(prefect_harness, ollama_lab, models_slack):
    st = evaluate_state(ollama_lab, approval="auto")  # the config says manual
    msg = failure(st)
    assert "approval 'auto' refused" in msg and "'manual'" in msg and str(ollama_lab.config_path) in msg
    assert not requests_to(ollama_lab.staging, "/api/pull") and not requests_to(ollama_lab.prod, "/api/pull")
    assert ollama_lab.prod.behavior.digest == ollama_lab.v1_digest


def test_approval_parameter_may_make_it_stricter(prefect_harness, ollama_lab, models_slack):
    ollama_lab.write_config('approval = "auto"\n')
    approver = Approver(False, "a person looks at it first")
    approver.start()
    st = evaluate_state(ollama_lab, approval="manual")
    approver.join(10)
    assert approver.error is None, approver.error
    r = st.result()
    assert r.policy == "manual" and r.decision.by == "person" and r.status == "rejected"
    assert ollama_lab.prod.behavior.digest == ollama_lab.v1_digest


def test_candidate_from_an_unconfigured_registry_is_refused(prefect_harness, ollama_lab, models_slack):
    st = evaluate_state(ollama_lab, candidate="evil.example.com/x/llama3:8b")
    msg = failure(st)
    assert "registry evil.example.com is not in [models].candidate_registries" in msg
    assert not requests_to(ollama_lab.staging, "/api/pull") and not requests_to(ollama_lab.prod, "/api/pull")
    # ... and is allowed once the host's config names that registry (it then fails at the pull,
    # which the simulator's registry does not have: the refusal was the config, not the name).
    ollama_lab.write_config('candidate_registries = ["registry.ollama.ai", "evil.example.com"]\n')
    st = evaluate_state(ollama_lab, candidate="evil.example.com/x/llama3:8b")
    assert "candidate_registries" not in (st.message or "")
    assert requests_to(ollama_lab.staging, "/api/pull")


def _files_config(tmp_path, url: str, extra: str = "") -> tuple:
    versions, incoming, elsewhere = (tmp_path / d for d in ("versions", "incoming", "elsewhere"))
    for d in (versions, incoming, elsewhere):
        d.mkdir()
    (versions / "v1.gguf").write_bytes(b"GGUF v1" * 100)
    cand = elsewhere / "v2.gguf"
    cand.write_bytes(b"GGUF v2" * 100)
    cfg = tmp_path / "files.toml"
    cfg.write_text(
        f'state_dir = "{tmp_path / "state"}"\n'
        f'[[endpoints]]\nname = "prod"\napi = "openai"\nurl = "{url}"\nmodel = "tiny"\n'
        f'[[endpoints]]\nname = "staging"\napi = "openai"\nurl = "{url}"\nmodel = "tiny"\nstaging = true\n'
        '[models]\napproval = "auto"\n'
        f'[[models.endpoints]]\nendpoint = "prod"\nversions_dir = "{versions}"\n'
        f'active_link = "{tmp_path / "active.gguf"}"\nrestart_command = ["touch", "{tmp_path / "restarted"}"]\n'
        f'candidate_dirs = ["{incoming}"]\n' + extra
    )
    return cfg, versions, cand


def test_file_candidate_outside_configured_directories_is_refused(prefect_harness, tmp_path, models_slack):
    """Even with its own (correct) expected_sha256: a parameter never makes a file trusted."""
    from flows.evaluate_model import evaluate_model

    cfg, versions, cand = _files_config(tmp_path, "http://127.0.0.1:9")
    sha = hashlib.sha256(cand.read_bytes()).hexdigest()
    st = asyncio.run(evaluate_model(candidate=str(cand), endpoint="prod", config_path=str(cfg),
                                    expected_sha256=sha, return_state=True))  # fmt: skip
    msg = failure(st)
    assert f"candidate {str(cand)!r} refused" in msg and "candidate_dirs" in msg
    assert sorted(p.name for p in versions.iterdir()) == ["v1.gguf"], "nothing was copied in"
    assert not (tmp_path / "restarted").exists()
    # A symlink inside a configured directory that points elsewhere is resolved first: refused too.
    (tmp_path / "incoming" / "v2.gguf").symlink_to(cand)
    st = asyncio.run(evaluate_model(candidate=str(tmp_path / "incoming" / "v2.gguf"), endpoint="prod",
                                    config_path=str(cfg), return_state=True))  # fmt: skip
    assert "refused" in failure(st)
    assert sorted(p.name for p in versions.iterdir()) == ["v1.gguf"]


def test_rollback_target_must_be_a_recorded_version(prefect_harness, ollama_lab, models_slack):
    from flows.rollback_model import rollback_model_flow
    from llm_upkeep.clients import OllamaClient, make_http_client
    from llm_upkeep.config import load_config

    cfg = load_config(ollama_lab.config_path)

    async def pull():  # the candidate is on the server, but nothing recorded it
        async with make_http_client() as http:
            return [p async for p in OllamaClient(cfg.endpoint("prod"), http).pull(CANDIDATE)]

    asyncio.run(pull())
    st = asyncio.run(rollback_model_flow(endpoint="prod", to=CANDIDATE, config_path=str(ollama_lab.config_path),
                                         return_state=True))  # fmt: skip
    msg = failure(st)
    assert f"rollback target {CANDIDATE!r} refused" in msg
    assert not requests_to(ollama_lab.prod, "/api/copy")
    assert read_manifest(ollama_lab.store, ALIAS).digest == "sha256:" + ollama_lab.v1_digest
    # A pinned version is a valid target.
    from llm_upkeep.models.pins import pin_models

    assert pin_models(cfg, endpoint="prod").ok
    res = asyncio.run(rollback_model_flow(endpoint="prod", to=CANDIDATE, config_path=str(ollama_lab.config_path)))
    assert res.ok and res.to_version == CANDIDATE, res.detail
    assert ollama_lab.prod.behavior.digest == ollama_lab.v2_digest


def test_candidate_changed_during_approval_is_not_switched(prefect_harness, ollama_lab, models_slack):
    """Approval can take hours: the candidate is hashed again right before the switch."""
    man = {}

    def tamper():
        m = read_manifest(ollama_lab.store, CANDIDATE)
        big = max(m.layers, key=lambda la: la.size)
        p = blob_path(ollama_lab.store, big.digest)
        data = bytearray(p.read_bytes())
        data[len(data) // 2] ^= 0xFF
        p.write_bytes(bytes(data))
        man["blob"] = str(p)

    approver = Approver(True, "fine", before=tamper)
    approver.start()
    st = evaluate_state(ollama_lab)
    approver.join(10)
    assert approver.error is None, approver.error
    r = st.result()
    assert r.status == "failed" and "changed after verification" in r.detail, r.detail
    assert r.verification.ok and not r.recheck.ok and r.recheck.problems[0].file == man["blob"]
    assert not requests_to(ollama_lab.prod, "/api/copy")
    assert ollama_lab.prod.behavior.digest == ollama_lab.v1_digest


# ---------------------------------------------------------------- config_path in a deployment's run


def run_from_deployment(flow, name: str, parameters: dict):
    """Register `flow` as a deployment, create a run of it with `parameters`, execute it here."""
    from prefect import get_client
    from prefect.flow_engine import run_flow

    dep_id = flow.to_deployment(name=name).apply()
    with get_client(sync_client=True) as c:
        fr = c.create_flow_run_from_deployment(dep_id, parameters=parameters)
    st = run_flow(flow, flow_run=fr, parameters=fr.parameters, return_type="state")
    return asyncio.run(st) if asyncio.iscoroutine(st) else st


def _restart_config(path, state, marker, extra: str = "") -> str:
    path.write_text(
        f'state_dir = "{state}"\n[[endpoints]]\nname = "prod"\napi = "ollama"\nurl = "http://127.0.0.1:9"\n'
        f'model = "m"\n[restart]\ndry_run = false\nrecover_timeout_s = 0.5\ncommand = ["touch", "{marker}"]\n'
        + extra
    )
    return str(path)


def test_config_path_parameter_cannot_name_another_file(prefect_harness, tmp_path, monkeypatch):
    """A run from the UI/API naming another TOML would run that file's restart.command: refused."""
    from flows.scheduled_restart import scheduled_restart

    host_marker, evil_marker = tmp_path / "host-restarted", tmp_path / "evil-restarted"
    host = _restart_config(tmp_path / "host.toml", tmp_path / "state", host_marker)
    evil = _restart_config(tmp_path / "evil.toml", tmp_path / "state", evil_marker)
    monkeypatch.setenv("LLM_UPKEEP_CONFIG", host)

    st = run_from_deployment(scheduled_restart, "authority-test", {"config_path": evil})
    msg = failure(st)
    assert f"config_path {evil!r} refused" in msg and f"this host's config is {host}" in msg
    assert not evil_marker.exists() and not host_marker.exists()

    # The host's own file is accepted (and its command runs), by path or by default.
    st = run_from_deployment(scheduled_restart, "authority-test", {"config_path": host})
    assert st.is_completed(), st.message
    assert host_marker.exists() and not evil_marker.exists()

    # The host's config may allow another file explicitly.
    _restart_config(tmp_path / "host.toml", tmp_path / "state", host_marker,
                    f'[control]\nallowed_config_paths = ["{evil}"]\n')  # fmt: skip
    st = run_from_deployment(scheduled_restart, "authority-test", {"config_path": evil})
    assert st.is_completed(), st.message
    assert evil_marker.exists()


def test_without_a_host_config_a_run_cannot_choose_one(prefect_harness, tmp_path, monkeypatch):
    from flows.scheduled_restart import scheduled_restart

    monkeypatch.delenv("LLM_UPKEEP_CONFIG", raising=False)
    marker = tmp_path / "evil-restarted"
    evil = _restart_config(tmp_path / "evil.toml", tmp_path / "state", marker)
    st = run_from_deployment(scheduled_restart, "authority-test-2", {"config_path": evil})
    assert "this host names no config" in failure(st)
    assert not marker.exists()


def test_expected_sha256_only_narrows_a_pinned_version(tmp_path):
    """A given checksum is one more condition on a pinned version, never a replacement for the pin."""
    from llm_upkeep.config import load_config
    from llm_upkeep.models.pins import pin_models
    from llm_upkeep.models.promote import promote_model

    cfg_path, versions, _cand = _files_config(tmp_path, "http://127.0.0.1:9")
    (tmp_path / "active.gguf").symlink_to(versions / "v1.gguf")
    (versions / "v2.gguf").write_bytes(b"GGUF v2" * 100)
    cfg = load_config(cfg_path)
    assert pin_models(cfg, endpoint="prod").ok
    right = hashlib.sha256((versions / "v2.gguf").read_bytes()).hexdigest()
    res = promote_model(cfg, "v2.gguf", endpoint="prod", expected_sha256="0" * 64, dry_run=True)
    assert not res.ok and res.problems and res.problems[0].expected == "sha256:" + "0" * 64
    res = promote_model(cfg, "v2.gguf", endpoint="prod", expected_sha256=right, dry_run=True)
    assert res.ok and res.dry_run, res.detail


def test_recheck_of_a_file_candidate_compares_with_its_pin_and_never_pins(tmp_path):
    from llm_upkeep.config import load_config
    from llm_upkeep.models.endpoints import managed_endpoint
    from llm_upkeep.models.pins import pin_models
    from llm_upkeep.models.recheck import recheck_candidate

    cfg_path, versions, _cand = _files_config(tmp_path, "http://127.0.0.1:9")
    (tmp_path / "active.gguf").symlink_to(versions / "v1.gguf")
    cfg = load_config(cfg_path)
    m = managed_endpoint(cfg, "prod")
    (versions / "new.gguf").write_bytes(b"unpinned")
    unpinned = recheck_candidate(cfg, m, str(versions / "new.gguf"), None)
    assert not unpinned.ok and unpinned.problems[0].expected == "a pin"  # no trust on first use here
    assert pin_models(cfg, endpoint="prod").ok
    assert recheck_candidate(cfg, m, str(versions / "new.gguf"), None).ok
    (versions / "new.gguf").write_bytes(b"unpinnee")  # same size, other bytes
    changed = recheck_candidate(cfg, m, str(versions / "new.gguf"), None)
    assert not changed.ok and changed.problems[0].file == str(versions / "new.gguf")
