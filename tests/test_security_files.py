"""File permission checks on real files with real modes (the audit only stats and reads them)."""

from __future__ import annotations

import os
import stat

from llm_upkeep.security.files import check_config_files, check_tree, find_secrets

SECRET = "sk-live-0123456789abcdefghijklmn"


def write(path, text, mode):
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_world_readable_config_with_secret_is_a_finding_without_the_secret(tmp_path):
    p = write(tmp_path / "ollama.env", f"OLLAMA_HOST=0.0.0.0\nOPENAI_API_KEY={SECRET}\n", 0o644)
    findings, _ = check_config_files([str(p)])
    assert len(findings) == 1
    f = findings[0]
    assert f.id == f"files.secret-readable:{p}" and f.severity == "high"
    assert any("mode 0644" in e for e in f.evidence)
    assert any(f"{p}:2: OPENAI_API_KEY" in e for e in f.evidence)
    assert SECRET not in str(f.model_dump()) and "chmod 600" in f.fix
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o644  # the audit changed nothing


def test_private_config_and_config_without_secrets_are_fine(tmp_path):
    a = write(tmp_path / "a.env", f"API_KEY={SECRET}\n", 0o600)
    b = write(tmp_path / "b.toml", 'api_key_env = "VLLM_KEY"\nmodel = "llama3"\n', 0o644)
    findings, notes = check_config_files([str(a), str(b), str(tmp_path / "missing.env")])
    assert findings == []
    assert any("not found" in n for n in notes)


def test_world_writable_config_is_a_finding_even_without_secrets(tmp_path):
    p = write(tmp_path / "llm.toml", "model = 'x'\n", 0o666)
    findings, _ = check_config_files([str(tmp_path / "*.toml")])
    assert [f.id for f in findings] == [f"files.config-writable:{p}"]


def test_model_dir_world_writable(tmp_path):
    models = tmp_path / "models"
    (models / "blobs").mkdir(parents=True)
    blob = write(models / "blobs" / "sha256-abc", "weights", 0o666)
    write(models / "manifest", "{}", 0o644)
    findings, notes = check_tree([str(models)], kind="model", limit=100)
    assert len(findings) == 1 and findings[0].severity == "high"
    assert any(str(blob) in e and "0666" in e for e in findings[0].evidence)
    os.chmod(blob, 0o644)
    findings, _ = check_tree([str(models)], kind="model", limit=100)
    assert findings == []
    os.chmod(models, 0o1777)  # sticky world-writable dir (like /tmp): others cannot replace files
    assert check_tree([str(models)], kind="model", limit=100)[0] == []
    os.chmod(models, 0o755)


def test_prompt_templates_world_writable_is_medium(tmp_path):
    t = write(tmp_path / "system.txt", "You are helpful.", 0o646)
    findings, _ = check_tree([str(t)], kind="prompt", limit=10)
    assert findings[0].severity == "medium" and "prompt" in findings[0].id


def test_symlinks_are_not_followed(tmp_path):
    target = write(tmp_path / "outside", "x", 0o666)
    models = tmp_path / "m"
    models.mkdir()
    os.symlink(target, models / "link")
    assert check_tree([str(models)], kind="model", limit=10)[0] == []


def test_secret_detection():
    text = "\n".join([
        'api_key = "sk-abcdefghijklmnopqrstuv"',
        'api_key_env = "VLLM_KEY"',
        "password=${DB_PASS}",
        "# token = commented-out-secret",
        "webhook: https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXX",
        "timeout = 30",
        "aws = AKIAIOSFODNN7EXAMPLE",
        "HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyzABCDEF",
    ])  # fmt: skip
    hits = [(h.line, h.what) for h in find_secrets(text)]
    assert hits == [(1, "api_key"), (5, "webhook"), (7, "AWS access key"), (8, "HF_TOKEN")]


def test_evidence_lists_ten_entries_and_counts_the_rest(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    for i in range(15):
        f = models / f"blob-{i:02d}"
        f.write_bytes(b"x")
        os.chmod(f, 0o666)
    (finding,) = check_tree([str(models)], kind="model", limit=100)[0]
    assert len(finding.evidence) == 11 and finding.evidence[-1] == "... and 5 more"
    assert "15 model file(s)" in finding.title
