"""Pins and offline verification: real blobs with real sha256 names, real files, real corruption."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llm_upkeep.config import load_config
from llm_upkeep.models.hashing import Hasher, sha256_file
from llm_upkeep.models.lock import read_lock
from llm_upkeep.models.pins import pin_models
from llm_upkeep.models.store import blob_path, parse_model_name, read_manifest, write_model
from llm_upkeep.models.verify import verify_models
from llm_upkeep.sim.ollama_store import fake_weights

ROOT = Path(__file__).resolve().parent.parent


def weights(seed: int, n: int = 300_000) -> bytes:
    return fake_weights(seed, n)


def write_config(tmp_path: Path, extra: str = "") -> Path:
    store = tmp_path / "ollama"
    p = tmp_path / "llm-upkeep.toml"
    p.write_text(
        f'state_dir = "{tmp_path / "state"}"\n'
        '[[endpoints]]\nname = "ollama-main"\napi = "ollama"\nurl = "http://127.0.0.1:9"\nmodel = "chat:active"\n'
        f'[models]\nollama_models_dir = "{store}"\n' + extra
    )
    return p


@pytest.fixture
def store_cfg(tmp_path):
    store = tmp_path / "ollama"
    a = write_model(
        store,
        "llama3:8b",
        weights(1),
        extra_layers=[("application/vnd.ollama.image.template", b"{{ .Prompt }}")],
    )
    b = write_model(
        store,
        "llama3:8b-v2",
        weights(2),
        extra_layers=[("application/vnd.ollama.image.template", b"{{ .Prompt }}")],
    )
    write_model(
        store,
        "chat:active",
        weights(1),
        extra_layers=[("application/vnd.ollama.image.template", b"{{ .Prompt }}")],
    )
    return load_config(write_config(tmp_path)), store, a, b


def flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x01]))


def test_store_layout_and_names(tmp_path):
    n = parse_model_name("llama3")
    assert (
        n.manifest_relpath == "manifests/registry.ollama.ai/library/llama3/latest"
        and n.short == "llama3:latest"
    )
    assert parse_model_name("user/m:q4").manifest_relpath == "manifests/registry.ollama.ai/user/m/q4"
    assert parse_model_name("host.io:5000/ns/m:t").short == "host.io:5000/ns/m:t"
    m = write_model(tmp_path, "llama3:8b", weights(3, 1000))
    for la in m.layers:
        p = blob_path(tmp_path, la.digest)
        assert p.name == "sha256-" + la.hex and hashlib.sha256(p.read_bytes()).hexdigest() == la.hex
        assert p.stat().st_size == la.size
    assert m.digest == "sha256:" + hashlib.sha256(m.path.read_bytes()).hexdigest()


def test_clean_store_passes_without_and_with_pins(store_cfg):
    cfg, store, a, b = store_cfg
    rep = verify_models(cfg)
    assert rep.ok and not rep.problems
    assert any("no pins" in w for w in rep.warnings)
    pinned = pin_models(cfg)
    assert pinned.ok and pinned.written
    lock = read_lock(pinned.lock_file)
    tags = {t.name: t for t in lock.endpoints["ollama-main"].tags}
    assert set(tags) == {"llama3:8b", "llama3:8b-v2", "chat:active"}
    assert tags["llama3:8b"].digest == a.digest
    assert [la.digest for la in tags["llama3:8b-v2"].layers] == [la.digest for la in b.layers]
    # Human-readable TOML in state_dir (the config directory may be read-only under the unit).
    text = Path(pinned.lock_file).read_text()
    assert Path(pinned.lock_file) == cfg.state_path / "models.lock" and "[[endpoints.ollama-main.tags]]" in text
    rep = verify_models(cfg)
    assert rep.ok and rep.endpoints[0].pinned and rep.endpoints[0].models == 3


def test_single_byte_corruption_is_found_and_named(store_cfg):
    cfg, store, a, b = store_cfg
    pin_models(cfg)
    weights_layer = b.layers[1]
    blob = blob_path(store, weights_layer.digest)
    flip_byte(blob, 123_456)
    actual = "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest()
    rep = verify_models(cfg)
    assert not rep.ok
    assert [p.public() for p in rep.problems] == [
        {"model": "llama3:8b-v2", "file": str(blob), "expected": weights_layer.digest, "actual": actual}
    ]
    # Shared blobs are read once: llama3:8b and chat:active share every blob.
    assert rep.files_hashed == len({la.digest for m in (a, b) for la in m.layers})


def test_corruption_found_without_pins_too(store_cfg):
    cfg, store, a, b = store_cfg
    blob = blob_path(store, a.layers[1].digest)
    flip_byte(blob, 7)
    rep = verify_models(cfg)
    assert not rep.ok
    # a and chat:active share the blob: one problem per model that uses it, same file.
    assert {p.model for p in rep.problems} == {"llama3:8b", "chat:active"}
    assert {p.file for p in rep.problems} == {str(blob)}


def test_truncated_missing_and_replaced_manifest(store_cfg):
    cfg, store, a, b = store_cfg
    pin_models(cfg)
    blob = blob_path(store, a.layers[1].digest)
    with open(blob, "r+b") as f:
        f.truncate(1000)
    os.unlink(blob_path(store, b.layers[2].digest))
    # The tag was re-pulled behind our back: a new manifest under the same name.
    write_model(store, "llama3:8b-v2", weights(9))
    rep = verify_models(cfg)
    kinds = {(p.model, p.kind) for p in rep.problems}
    assert ("llama3:8b", "size") in kinds
    assert ("llama3:8b-v2", "manifest") in kinds
    size = next(p for p in rep.problems if p.kind == "size")
    assert size.expected == f"{a.layers[1].size} bytes" and size.actual == "1000 bytes"


def test_pin_refuses_a_corrupted_blob(store_cfg):
    cfg, store, a, b = store_cfg
    flip_byte(blob_path(store, b.layers[1].digest), 10)
    rep = pin_models(cfg)
    assert not rep.ok and not rep.written
    assert rep.problems[0].model == "llama3:8b-v2"


def test_files_store_pins_and_verifies(tmp_path):
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "tiny-v1.gguf").write_bytes(weights(1, 50_000))
    shard_dir = versions / "qwen-2026-11"
    shard_dir.mkdir()
    (shard_dir / "model-00001.safetensors").write_bytes(weights(2, 40_000))
    (shard_dir / "config.json").write_text("{}")
    extra = (
        '[[endpoints]]\nname = "llamacpp"\napi = "openai"\nurl = "http://127.0.0.1:9"\nmodel = "tiny"\n'
        f'[[models.endpoints]]\nendpoint = "llamacpp"\nversions_dir = "{versions}"\n'
        f'active_link = "{tmp_path / "active.gguf"}"\n'
    )
    cfg = load_config(write_config(tmp_path, extra))
    rep = verify_models(cfg, endpoint="llamacpp")
    assert rep.ok and any("no pins" in w for w in rep.warnings)
    assert pin_models(cfg, endpoint="llamacpp").ok
    assert verify_models(cfg, endpoint="llamacpp").ok
    flip_byte(shard_dir / "model-00001.safetensors", 39_999)
    (shard_dir / "tokenizer.json").write_text("{}")
    rep = verify_models(cfg, endpoint="llamacpp")
    by_kind = {p.kind: p for p in rep.problems}
    assert set(by_kind) == {"digest", "extra"}
    assert by_kind["digest"].file == str(shard_dir / "model-00001.safetensors")
    assert (
        by_kind["digest"].actual == "sha256:" + sha256_file(str(shard_dir / "model-00001.safetensors")).sha256
    )


def test_hasher_reads_each_file_once(tmp_path):
    a = tmp_path / "a.bin"
    a.write_bytes(weights(5, 100_000))
    os.link(a, tmp_path / "hard.bin")
    os.symlink(a, tmp_path / "sym.bin")
    with Hasher(workers=2) as h:
        out = h.hash_many([a, tmp_path / "hard.bin", tmp_path / "sym.bin", a])
        h.hash(a)
    assert h.files_read == 1 and h.bytes_read == 100_000
    assert {r.sha256 for r in out.values()} == {hashlib.sha256(a.read_bytes()).hexdigest()}
    assert set(out) == {str(a), str(tmp_path / "hard.bin"), str(tmp_path / "sym.bin")}
    assert sha256_file(str(tmp_path / "nope")).error == "missing"


def run_cli(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "llm_upkeep.cli", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def test_cli_verify_json_contract_and_exit_codes(store_cfg):
    cfg, store, a, b = store_cfg
    p = run_cli("models", "pin", "--config", cfg.source, "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["ok"] is True
    p = run_cli("models", "verify", "--config", cfg.source, "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["ok"] is True and out["problems"] == []
    blob = blob_path(store, a.layers[1].digest)
    flip_byte(blob, 99)
    p = run_cli("models", "verify", "--config", cfg.source, "--json")
    assert p.returncode == 1
    out = json.loads(p.stdout)
    assert out["ok"] is False
    assert all(set(x) == {"model", "file", "expected", "actual"} for x in out["problems"])
    assert {x["file"] for x in out["problems"]} == {str(blob)}
    assert out["problems"][0]["expected"] == a.layers[1].digest
    assert out["problems"][0]["actual"] == "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest()
    p = run_cli("models", "verify", "--config", cfg.source, "--endpoint", "nope", "--json")
    assert p.returncode == 2 and json.loads(p.stdout)["error"] == "config"
    p = run_cli("models", "verify", "--config", cfg.source)
    assert p.returncode == 1 and "PROBLEM" in p.stdout and str(blob) in p.stdout


def test_read_manifest_of_copied_tag_has_same_digest(store_cfg):
    cfg, store, a, b = store_cfg
    assert read_manifest(store, "chat:active").digest == a.digest
