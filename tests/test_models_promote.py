"""Promotion and rollback against the store-backed Ollama simulator; the atomic selectors."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from llm_upkeep.clients import OllamaClient, make_http_client
from llm_upkeep.config import load_config
from llm_upkeep.models.active import (
    SwitchRecord,
    promotion_stack,
    read_env_var,
    read_symlink,
    swap_symlink,
    write_env_var,
)
from llm_upkeep.models.lock import read_lock
from llm_upkeep.models.promote import backup_tag, promote_model, rollback_model
from llm_upkeep.models.store import blob_path, read_manifest
from llm_upkeep.models.verify import verify_models
from tests.models_fixtures import ALIAS

ROOT = Path(__file__).resolve().parent.parent


async def _pull(endpoint, model):
    async with make_http_client() as http:
        return [p async for p in OllamaClient(endpoint, http).pull(model)]


def pull(cfg, name, model="llama3:8b-v2"):
    return asyncio.run(_pull(cfg.endpoint(name), model))


def served_digest(sim) -> str:
    return sim.behavior.digest


def test_promote_then_rollback_ollama(ollama_lab):
    cfg = load_config(ollama_lab.config_path)
    progress = pull(cfg, "prod")
    assert progress[-1]["status"] == "success"
    v2 = read_manifest(ollama_lab.store, "llama3:8b-v2")
    assert v2.digest == "sha256:" + ollama_lab.v2_digest

    res = promote_model(cfg, "llama3:8b-v2", endpoint="prod")
    assert res.ok, res.detail
    assert res.from_digest == "sha256:" + ollama_lab.v1_digest and res.to_digest == v2.digest
    assert served_digest(ollama_lab.prod) == ollama_lab.v2_digest
    assert read_manifest(ollama_lab.store, ALIAS).digest == v2.digest
    # The previous version stays on disk under a tag of its own.
    keep = backup_tag(ALIAS, ollama_lab.v1_digest)
    assert keep == "chat:upkeep-" + ollama_lab.v1_digest[:12]
    assert read_manifest(ollama_lab.store, keep).digest == "sha256:" + ollama_lab.v1_digest
    assert res.ready.ok and res.ready.digest == v2.digest
    # The lock follows: the alias is pinned at its new digest, verify passes.
    lock = read_lock(ollama_lab.tmp / "state" / "models.lock")
    assert lock.endpoints["prod"].tag(ALIAS).digest == v2.digest
    assert verify_models(cfg, endpoint="prod").ok

    back = rollback_model(cfg, endpoint="prod")
    assert back.ok, back.detail
    assert back.to_version == keep
    assert served_digest(ollama_lab.prod) == ollama_lab.v1_digest
    assert back.seconds > 0
    # Nothing left to undo.
    with pytest.raises(Exception, match="no earlier version"):
        rollback_model(cfg, endpoint="prod")


def test_failed_probe_rolls_back_automatically(ollama_lab):
    cfg = load_config(ollama_lab.config_path)
    pull(cfg, "prod")
    ollama_lab.prod.broken.add(ollama_lab.v2_digest)
    res = promote_model(cfg, "llama3:8b-v2", endpoint="prod")
    assert not res.ok and res.rolled_back
    assert res.ready is not None and not res.ready.ok and "http_5xx" in res.ready.last_error
    assert res.rollback["ok"] and res.rollback["to_version"] == backup_tag(ALIAS, ollama_lab.v1_digest)
    # The served model is the old one again, on the API and on disk.
    assert served_digest(ollama_lab.prod) == ollama_lab.v1_digest
    assert read_manifest(ollama_lab.store, ALIAS).digest == "sha256:" + ollama_lab.v1_digest


def test_corrupted_candidate_is_not_promoted(ollama_lab):
    cfg = load_config(ollama_lab.config_path)
    pull(cfg, "prod")
    blob = blob_path(ollama_lab.store, read_manifest(ollama_lab.store, "llama3:8b-v2").layers[1].digest)
    with open(blob, "r+b") as f:
        f.seek(1000)
        f.write(b"\x00")
    res = promote_model(cfg, "llama3:8b-v2", endpoint="prod")
    assert not res.ok and res.problems and res.problems[0].file == str(blob)
    assert served_digest(ollama_lab.prod) == ollama_lab.v1_digest


def test_dry_run_changes_nothing(ollama_lab):
    cfg = load_config(ollama_lab.config_path)
    pull(cfg, "prod")
    res = promote_model(cfg, "llama3:8b-v2", endpoint="prod", dry_run=True)
    assert res.ok and res.dry_run and "would copy" in res.detail
    assert served_digest(ollama_lab.prod) == ollama_lab.v1_digest


def test_cli_promote_rollback_list_json(ollama_lab):
    cfg = load_config(ollama_lab.config_path)
    pull(cfg, "prod")

    def cli(*a):
        return subprocess.run([sys.executable, "-m", "llm_upkeep.cli", "models", *a, "--config",
                               str(ollama_lab.config_path), "--json"], capture_output=True, text=True,
                              timeout=120, cwd=ROOT)  # fmt: skip

    p = cli("promote", "llama3:8b-v2", "--endpoint", "prod")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["ok"] and out["action"] == "promote" and out["seconds"] > 0
    p = cli("list", "--endpoint", "prod")
    listed = json.loads(p.stdout)["endpoints"][0]
    assert listed["rollback_to"] == backup_tag(ALIAS, ollama_lab.v1_digest)
    assert {v["name"] for v in listed["versions"]} >= {ALIAS, "llama3:8b-v2", "llama3:8b-v1"}
    p = cli("rollback", "--endpoint", "prod")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["to_digest"] == "sha256:" + ollama_lab.v1_digest
    p = cli("promote", "no-such:tag", "--endpoint", "prod", "--no-verify")
    assert p.returncode == 2 and json.loads(p.stdout)["error"] == "switch"


# ---------------------------------------------------------------- selectors and history


def test_symlink_swap_is_atomic_under_concurrent_readers(tmp_path):
    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    a.write_bytes(b"A" * 10)
    b.write_bytes(b"B" * 10)
    link = tmp_path / "active.gguf"
    assert swap_symlink(link, a) is None
    seen: set[bytes] = set()
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            try:
                with open(link, "rb") as f:
                    seen.add(f.read(1))
            except BaseException as exc:  # a missing link even once is a failure
                errors.append(exc)

    t = threading.Thread(target=reader)
    t.start()
    for i in range(300):
        swap_symlink(link, b if i % 2 == 0 else a)
    stop.set()
    t.join()
    assert not errors and seen == {b"A", b"B"}
    assert read_symlink(link) == str(a)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    regular = tmp_path / "regular"
    regular.write_text("x")
    with pytest.raises(Exception, match="regular file"):
        swap_symlink(regular, a)
    with pytest.raises(Exception, match="does not exist"):
        swap_symlink(link, tmp_path / "missing")


def test_env_file_rewrite_keeps_other_lines(tmp_path):
    env = tmp_path / "llm.env"
    env.write_text('# unit env\nOTHER=1\nexport LLM_MODEL_PATH="/srv/v1.gguf"\nTAIL=x\n')
    os.chmod(env, 0o640)
    prev = write_env_var(env, "LLM_MODEL_PATH", "/srv/v2.gguf")
    assert prev == "/srv/v1.gguf"
    assert env.read_text() == '# unit env\nOTHER=1\nLLM_MODEL_PATH="/srv/v2.gguf"\nTAIL=x\n'
    assert read_env_var(env, "LLM_MODEL_PATH") == "/srv/v2.gguf"
    assert oct(env.stat().st_mode & 0o777) == "0o640"
    fresh = tmp_path / "new.env"
    assert write_env_var(fresh, "M", "/x") is None and fresh.read_text() == 'M="/x"\n'


def test_promotion_stack_undoes_in_order():
    p1 = SwitchRecord(endpoint="e", action="promote", from_version="v1", to_version="v2", ok=True)
    p2 = SwitchRecord(endpoint="e", action="promote", from_version="v2", to_version="v3", ok=True)
    bad = SwitchRecord(endpoint="e", action="promote", from_version="v3", to_version="v4", ok=False)
    r2 = SwitchRecord(
        endpoint="e", action="rollback", from_version="v3", to_version="v2", ok=True, undoes=p2.id
    )
    assert [s.id for s in promotion_stack([p1, p2, bad])] == [p1.id, p2.id]
    assert [s.id for s in promotion_stack([p1, p2, bad, r2])] == [p1.id]


def test_keep_versions_prunes_backup_tags(ollama_lab):
    """Three promotions with keep_versions = 2: the oldest backup tag is deleted, the previous stays."""
    ollama_lab.write_config("keep_versions = 2\n")
    cfg = load_config(ollama_lab.config_path)
    from llm_upkeep.models.store import write_model as wm
    from tests.models_fixtures import fake_weights

    reg = ollama_lab.registry
    v3 = wm(reg, "llama3:8b-v3", fake_weights(3)).digest.split(":")[1]
    ollama_lab.prod.behavior.registry["llama3:8b-v3"] = v3
    pull(cfg, "prod")
    pull(cfg, "prod", "llama3:8b-v3")
    assert promote_model(cfg, "llama3:8b-v2", endpoint="prod").ok
    time.sleep(0.01)
    res = promote_model(cfg, "llama3:8b-v3", endpoint="prod")
    assert res.ok
    assert res.pruned == [backup_tag(ALIAS, ollama_lab.v1_digest)]
    assert not (ollama_lab.store / "manifests/registry.ollama.ai/library/chat" /
                ("upkeep-" + ollama_lab.v1_digest[:12])).exists()  # fmt: skip
    assert read_manifest(ollama_lab.store, backup_tag(ALIAS, ollama_lab.v2_digest))
    assert verify_models(cfg, endpoint="prod").ok
