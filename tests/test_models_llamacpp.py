"""Promote and roll back against the real llama.cpp server with two tiny GGUF models.

The server runs as a service whose --model is the active symlink; a switch swaps the link and
runs the service's restart command (a real subprocess that stops and restarts the server), then
probes until it answers. Different seeds answer differently, so the answer says which model
is served. Times are recorded in the results (benchmarks/rollback.py reports them).
"""

from __future__ import annotations

import shutil

import pytest

from llm_upkeep.config import load_config
from llm_upkeep.models.active import read_symlink, swap_symlink
from llm_upkeep.models.promote import promote_model, rollback_model
from llm_upkeep.models.verify import verify_models
from tests.llamacpp_fixtures import free_port, llamacpp_missing
from tests.models_fixtures import LlamaService

pytestmark = pytest.mark.llamacpp


@pytest.fixture
def llama_lab(tmp_path, tiny_gguf_factory):
    why = llamacpp_missing()
    if why:
        pytest.skip(why)
    versions = tmp_path / "versions"
    versions.mkdir()
    v1 = versions / "tiny-v1.gguf"
    v2 = versions / "tiny-v2.gguf"
    shutil.copyfile(tiny_gguf_factory(1), v1)
    shutil.copyfile(tiny_gguf_factory(2), v2)
    link = tmp_path / "active.gguf"
    swap_symlink(link, v1)
    svc = LlamaService(tmp_path / "svc", link, free_port())
    cfg_path = tmp_path / "llm-upkeep.toml"
    cmd = ", ".join(f'"{a}"' for a in svc.restart_command)
    cfg_path.write_text(
        f'state_dir = "{tmp_path / "state"}"\n'
        f'[[endpoints]]\nname = "llamacpp"\napi = "openai"\nurl = "{svc.url}"\nmodel = "tiny"\ntimeout_s = 30.0\n'
        "[models]\nprobe_timeout_s = 60.0\nprobe_interval_s = 0.05\n"
        f'[[models.endpoints]]\nendpoint = "llamacpp"\nversions_dir = "{versions}"\nactive_link = "{link}"\n'
        f"restart_command = [{cmd}]\n"
    )
    svc.start()
    try:
        svc.wait_ready()
        yield load_config(cfg_path), svc, v1, v2, link
    finally:
        svc.stop()


def test_promote_then_rollback_real_llamacpp(llama_lab):
    cfg, svc, v1, v2, link = llama_lab
    # What v1 answers (a rollback to v1 of itself would not say much): switch to v1 "again".
    first = promote_model(cfg, "tiny-v1.gguf")
    assert first.ok, first.detail
    answer_v1 = first.ready.answer
    res = promote_model(cfg, "tiny-v2.gguf")
    assert res.ok, res.detail
    assert read_symlink(link) == str(v2)
    assert res.restart.executed and res.restart.returncode == 0
    assert res.ready.answer and res.ready.answer != answer_v1, "v2 must answer differently from v1"
    assert res.seconds >= (res.restart_s or 0) and res.ready_s is not None
    back = rollback_model(cfg)
    assert back.ok, back.detail
    print(
        f"promote {res.seconds:.2f} s (restart {res.restart_s} s, ready {res.ready_s} s); "
        f"rollback {back.seconds:.2f} s (restart {back.restart_s} s, ready {back.ready_s} s)"
    )
    assert read_symlink(link) == str(v1) and back.to_version == str(v1)
    assert back.ready.answer == answer_v1, "after the rollback v1 is served again"
    # Both versions stayed on disk and are pinned; the ledger has the restarts.
    assert v1.exists() and v2.exists()
    assert verify_models(cfg, endpoint="llamacpp").ok
    ledger = (cfg.state_path / "restarts.jsonl").read_text().splitlines()
    assert sum('"llamacpp:models"' in line for line in ledger) == 3


def test_broken_candidate_rolls_back_real_llamacpp(llama_lab, tmp_path):
    cfg, svc, v1, v2, link = llama_lab
    cfg.models.probe_timeout_s = 8.0  # the broken server never answers: do not wait a minute for it
    bad = cfg.models.endpoints[0].versions_dir + "/tiny-broken.gguf"
    with open(bad, "wb") as f:
        f.write(b"GGUF" + b"\x00" * 4096)  # a truncated download: the server cannot load it
    res = promote_model(cfg, "tiny-broken.gguf")
    assert not res.ok and res.rolled_back, res.detail
    assert read_symlink(link) == str(v1)
    assert res.rollback["ok"] and res.rollback["ready"]["ok"]


@pytest.mark.prefect
def test_evaluate_model_files_store_end_to_end(prefect_harness, tmp_path, tiny_gguf_factory, monkeypatch):
    """A GGUF path outside versions_dir: copied in, checked against the publisher's sha256, staged on
    the staging server (its own link, restarted), benchmarked, approved through the API, promoted."""
    import asyncio
    import hashlib

    from flows.evaluate_model import evaluate_model
    from tests.models_fixtures import Approver

    why = llamacpp_missing()
    if why:
        pytest.skip(why)
    versions = tmp_path / "versions"
    versions.mkdir()
    v1 = versions / "tiny-v1.gguf"
    shutil.copyfile(tiny_gguf_factory(1), v1)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    cand = downloads / "tiny-v2.gguf"
    shutil.copyfile(tiny_gguf_factory(2), cand)
    sha = hashlib.sha256(cand.read_bytes()).hexdigest()
    links = {n: tmp_path / f"active-{n}.gguf" for n in ("prod", "staging")}
    svcs = {}
    for n, link in links.items():
        swap_symlink(link, v1)
        svcs[n] = LlamaService(tmp_path / f"svc-{n}", link, free_port())
    (tmp_path / "tiny-suite.yaml").write_text(
        "name: tiny\nmax_tokens: 6\nprompts:\n  - id: p0\n    prompt: hello\n    checks: [{type: regex, pattern: '.'}]\n"
    )
    text = f'state_dir = "{tmp_path / "state"}"\n'
    for n, svc in svcs.items():
        text += (f'[[endpoints]]\nname = "{n}"\napi = "openai"\nurl = "{svc.url}"\nmodel = "tiny"\n'
                 f"timeout_s = 30.0\nstaging = {'true' if n == 'staging' else 'false'}\n")  # fmt: skip
    text += '[benchmark]\nrepeats = 2\nwarmup = 1\nmax_tokens = 6\nsuite = "tiny-suite.yaml"\n'
    text += "[models]\nprobe_timeout_s = 60.0\nprobe_interval_s = 0.05\napproval_poll_s = 1.0\n"
    for n, svc in svcs.items():
        cmd = ", ".join(f'"{a}"' for a in svc.restart_command)
        text += (f'[[models.endpoints]]\nendpoint = "{n}"\nversions_dir = "{versions}"\n'
                 f'active_link = "{links[n]}"\nrestart_command = [{cmd}]\ncandidate_dirs = ["{downloads}"]\n')  # fmt: skip
    cfg_path = tmp_path / "llm-upkeep.toml"
    cfg_path.write_text(text)
    try:
        for svc in svcs.values():
            svc.start()
        for svc in svcs.values():
            svc.wait_ready()
        approver = Approver(True, "ok")
        approver.start()
        r = asyncio.run(evaluate_model(candidate=str(cand), endpoint="prod", config_path=str(cfg_path),
                                       expected_sha256=sha))  # fmt: skip
        approver.join(10)
        assert approver.error is None, approver.error
        assert r.status == "promoted", r.detail
        assert r.verification.ok and r.verification.selector == str(versions / "tiny-v2.gguf")
        assert read_symlink(links["staging"]) == str(versions / "tiny-v2.gguf")
        assert read_symlink(links["prod"]) == str(versions / "tiny-v2.gguf")
        assert r.switch.restart.executed and r.switch.ready.ok
        assert r.benchmark.compared and r.benchmark.metrics["ttft_p50_s"] is not None
        assert verify_models(load_config(cfg_path), endpoint="prod").ok
    finally:
        for svc in svcs.values():
            svc.stop()
