"""Model update check against a local registry over real HTTP: a moved tag is reported, nothing on
disk changes, every failure is classified."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from llm_upkeep.models.lock import EndpointPins, Lock, TagPin, write_lock
from llm_upkeep.review.config import ReviewConfig
from llm_upkeep.review.report import WeeklyReviewResult, render_report, section_from
from llm_upkeep.review.updates import check_model_updates, parse_ollama_name, same_digest
from tests.review_fixtures import ollama_manifest

OLD_SHA = "a" * 40
NEW_SHA = "b" * 40


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file and directory with content hash, size and mtime: any write shows."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            p = Path(dirpath, d)
            out[str(p.relative_to(root)) + "/"] = (p.stat().st_mtime_ns,)
        for f in filenames:
            p = Path(dirpath, f)
            st = p.stat()
            out[str(p.relative_to(root))] = (
                hashlib.sha256(p.read_bytes()).hexdigest(),
                st.st_size,
                st.st_mtime_ns,
            )
    return out


@pytest.fixture
def models_dir(tmp_path, registry):
    """An Ollama model store that pulled llama3:8b from the local registry (the old version)."""
    old = ollama_manifest(4_661_211_424, "old")
    host = urlsplit(registry.url).netloc
    root = tmp_path / "ollama-models"
    man = root / "manifests" / host / "library" / "llama3" / "8b"
    man.parent.mkdir(parents=True)
    man.write_bytes(old)
    blobs = root / "blobs"
    blobs.mkdir()
    (blobs / ("sha256-" + hashlib.sha256(b"weights").hexdigest())).write_bytes(b"weights")
    return root, "sha256:" + hashlib.sha256(old).hexdigest()


def cfg_for(registry, **kw) -> ReviewConfig:
    return ReviewConfig(
        ollama_registry_url=registry.url, hf_endpoint=registry.url, registry_timeout_s=5, **kw
    )


def test_moved_tag_is_an_available_update_and_nothing_on_disk_changes(registry, models_dir, state_dir):
    root, old_digest = models_dir
    new_digest = registry.set_tag("library", "llama3", "8b", ollama_manifest(4_920_000_000, "new"))
    short_id = registry.set_tag("library", "qwen2.5", "7b", ollama_manifest(4_700_000_000, "q"))[7:19]
    registry.set_revision("meta-llama/Llama-3.1-8B-Instruct", "main", NEW_SHA)
    pinned = [
        {"name": "llama3:8b", "source": "ollama"},  # digest from the local manifest
        ("qwen2.5", "ollama", "7b", short_id),  # the ID `ollama list` shows
        ("meta-llama/Llama-3.1-8B-Instruct", "hf", "main", OLD_SHA),
    ]  # fmt: skip
    before = snapshot(root)
    before_state = snapshot(state_dir)
    r = check_model_updates(pinned, cfg_for(registry, ollama_models_dir=str(root)))
    assert snapshot(root) == before and snapshot(state_dir) == before_state

    llama, qwen, hf = r.models
    assert llama.status == "update_available" and llama.pinned_from == "local manifest"
    assert (llama.pinned_digest, llama.current_digest) == (old_digest, new_digest)
    assert llama.info["size_bytes"] > 4_920_000_000 and "staging" in llama.detail
    assert qwen.status == "up_to_date"
    assert hf.status == "update_available" and hf.current_digest == NEW_SHA
    assert "2026-11-20" in hf.detail
    assert r.verdict == "warn" and r.summary.startswith("3 pinned model(s): 2 update(s) available")
    assert {c.target: str(c.status) for c in r.checks} == {
        "llama3:8b@8b": "warn", "qwen2.5@7b": "ok", "meta-llama/Llama-3.1-8B-Instruct@main": "warn",
    }  # fmt: skip
    # only reads: GETs with the manifest media type
    assert {m for m, _, _ in registry.requests} == {"GET"}
    accepts = [h.get("Accept") for _, p, h in registry.requests if "/manifests/" in p]
    assert accepts == ["application/vnd.docker.distribution.manifest.v2+json"] * 2


def test_unchanged_pins_are_ok_and_digest_without_header_is_computed(registry):
    body = ollama_manifest(1_000, "x")
    digest = registry.set_tag("me", "tiny", "latest", body)
    registry.send_digest_header = False
    registry.set_revision("org/model", "v1.0", OLD_SHA)
    r = check_model_updates([("me/tiny", "ollama", None, digest), ("org/model", "hf", "v1.0", OLD_SHA)],
                            cfg_for(registry))  # fmt: skip
    assert [m.status for m in r.models] == ["up_to_date", "up_to_date"] and r.verdict == "ok"
    assert r.models[0].current_digest == digest


def test_unpinned_model_is_a_warning_with_the_digest_to_pin(registry):
    digest = registry.set_tag("library", "mistral", "latest", ollama_manifest(10, "m"))
    (m,) = check_model_updates([("mistral", "ollama", None, None)], cfg_for(registry)).models
    assert m.status == "unpinned" and digest[:19] in m.detail


def test_hf_revision_is_quoted_and_token_sent(registry, monkeypatch):
    registry.set_revision("org/private", "refs/pr/1", NEW_SHA)
    monkeypatch.setenv("TEST_HF_TOKEN", "hf_testtokenvalue123")
    r = check_model_updates(
        [("org/private", "hf", "refs/pr/1", NEW_SHA)], cfg_for(registry, hf_token_env="TEST_HF_TOKEN")
    )
    assert r.models[0].status == "up_to_date"
    ((path, headers),) = [(p, h) for _, p, h in registry.requests if "/revision/" in p]
    assert path == "/api/models/org/private/revision/refs%2Fpr%2F1"
    assert headers["Authorization"] == "Bearer hf_testtokenvalue123"
    # the sibling-repo search (review/discovery.py) is the only other request, with the token too
    assert all(h["Authorization"] == "Bearer hf_testtokenvalue123" for _, _p, h in registry.requests)
    assert len(registry.requests) == 2
    assert "hf_testtokenvalue123" not in r.model_dump_json()


def test_failures_are_classified_per_model(registry):
    registry.set_tag("library", "ok", "1", ollama_manifest(1, "o"))
    r = check_model_updates(
        [("ghost:1", "ollama", None, "sha256:" + "0" * 64), ("ok:1", "ollama", None, "sha256:" + "1" * 64),
         ("bad name!:1", "ollama", None, None), ("org/none", "hf", "main", OLD_SHA)],
        cfg_for(registry),
    )  # fmt: skip
    ghost, ok, bad, none = r.models
    assert ghost.status == "error" and "not found" in ghost.detail
    assert ok.status == "update_available"
    assert bad.status == "error" and "not a valid Ollama model name" in bad.detail
    assert none.status == "error" and "HTTP 404" in none.detail
    assert r.verdict == "error"


def test_timeouts_and_refused_connections_are_errors_not_hangs(registry):
    registry.set_tag("library", "slow", "1", ollama_manifest(1, "s"))
    registry.delay_s = 1.5
    cfg = cfg_for(registry).model_copy(update={"registry_timeout_s": 0.3})
    (m,) = check_model_updates([("slow:1", "ollama", None, "sha256:" + "0" * 64)], cfg).models
    assert m.status == "error" and "timeout" in m.detail
    dead = ReviewConfig(ollama_registry_url="http://127.0.0.1:9", registry_timeout_s=2)
    (m,) = check_model_updates([("x:1", "ollama", None, "sha256:" + "0" * 64)], dead).models
    assert m.status == "error" and "cannot reach registry" in m.detail


def test_a_given_client_is_used_and_left_open(registry):
    registry.set_tag("library", "a", "b", ollama_manifest(1, "a"))
    with httpx.Client(timeout=httpx.Timeout(5.0)) as http:
        check_model_updates([("a:b", "ollama", None, None)], cfg_for(registry), http=http)
        assert not http.is_closed


def test_no_pins_is_skipped():
    r = check_model_updates([], ReviewConfig())
    assert r.verdict == "skipped" and "review.pinned" in r.summary


@pytest.mark.parametrize(
    "name,ref,expected",
    [
        ("llama3:8b", None, ("library", "llama3", "8b")),
        ("llama3", None, ("library", "llama3", "latest")),
        ("llama3", "70b", ("library", "llama3", "70b")),
        ("me/model:q4_K_M", None, ("me", "model", "q4_K_M")),
        ("registry.ollama.ai/library/qwen2.5:7b", None, ("library", "qwen2.5", "7b")),
    ],
)
def test_parse_ollama_name(name, ref, expected):
    assert parse_ollama_name(name, ref) == expected


def test_same_digest_accepts_the_short_id():
    d = "sha256:" + "ab12" * 16
    assert same_digest("ab12ab12ab12", d) and same_digest(d.upper(), d)
    assert not same_digest("ab12ab", d) and not same_digest("sha256:" + "0" * 64, d)


def _lock_with(path: Path, *tags: tuple[str, str]) -> Path:
    pins = EndpointPins(store="ollama", models_dir="/var/lib/ollama", tags=[
        TagPin(name=n, manifest=f"manifests/x/{n}", digest=d, size=1, pinned_at="2026-11-01T00:00:00+00:00")
        for n, d in tags
    ])  # fmt: skip
    return write_lock(path, Lock(endpoints={"prod": pins, "staging": pins}))


def test_models_lock_tags_are_checked_unless_the_config_lists_them(registry, tmp_path):
    old = "sha256:" + hashlib.sha256(ollama_manifest(1, "old")).hexdigest()
    new = registry.set_tag("library", "llama3", "8b", ollama_manifest(2, "new"))
    qwen = registry.set_tag("library", "qwen2.5", "7b", ollama_manifest(3, "q"))
    # llama3:upkeep-<digest12> is the copy a promotion keeps for rollback: no registry knows that tag
    lock = _lock_with(
        tmp_path / "models.lock", ("llama3:8b", old), ("qwen2.5:7b", old), ("llama3:upkeep-0123456789ab", old)
    )
    # qwen2.5 is also in the config, pinned at what the registry has: the config's pin wins
    r = check_model_updates([("qwen2.5", "ollama", "7b", qwen)], cfg_for(registry), lock_file=lock)
    by = {m.name: m for m in r.models}
    assert set(by) == {"qwen2.5", "llama3:8b"}  # the lock's two endpoints pin the same tags: asked once
    assert by["qwen2.5"].status == "up_to_date" and by["qwen2.5"].pinned_from == "config"
    assert by["llama3:8b"].status == "update_available" and by["llama3:8b"].pinned_from == "models.lock"
    assert (by["llama3:8b"].pinned_digest, by["llama3:8b"].current_digest) == (old, new)
    assert len([p for _, p, _ in registry.requests if "/manifests/" in p]) == 2
    now = datetime.now(UTC)
    md = render_report(WeeklyReviewResult(status="degraded", window_start=now, window_end=now,
                                          sections={"model_updates": section_from(r)}))  # fmt: skip
    row = next(line for line in md.splitlines() if line.startswith("| llama3:8b "))
    assert f"`{old[:19]}` (models.lock)" in row and "update_available" in row


def test_missing_lock_adds_nothing_and_a_broken_lock_is_an_error_naming_the_file(registry, tmp_path):
    assert check_model_updates([], cfg_for(registry), lock_file=tmp_path / "none.lock").verdict == "skipped"
    bad = tmp_path / "models.lock"
    bad.write_text("version = 1\n[endpoints.prod\n")
    r = check_model_updates([("mistral", "ollama", None, None)], cfg_for(registry), lock_file=bad)
    assert r.verdict == "error" and str(bad) in r.summary
    assert [(c.target, str(c.status)) for c in r.checks] == [("models.lock", "error")]
    assert registry.requests == []


def test_a_manifest_layer_that_is_not_an_object_is_that_models_error_row_only(registry):
    """Review finding: a layer like ``"x"`` raised AttributeError out of the update check and
    hid every model's result."""
    registry.set_tag("library", "good", "1", ollama_manifest(1, "g"))
    registry.set_tag("library", "odd", "1", b'{"schemaVersion": 2, "layers": ["x", 7]}')
    registry.set_tag("library", "odd", "2", b'{"schemaVersion": 2, "layers": [{"size": "huge"}]}')
    r = check_model_updates(
        [("odd:1", "ollama", None, "sha256:" + "0" * 64), ("odd:2", "ollama", None, "sha256:" + "0" * 64),
         ("good:1", "ollama", None, "sha256:" + "0" * 64)],
        cfg_for(registry),
    )  # fmt: skip
    odd1, odd2, good = r.models
    assert odd1.status == "error" and "layer 0 is str, not an object" in odd1.detail
    assert odd2.status == "error" and "size" in odd2.detail
    assert good.status == "update_available"
    assert r.verdict == "error" and len(r.checks) == 3
