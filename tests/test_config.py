import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from llm_upkeep.config import Config, ConfigError, load_config, parse_config, resolve_secret
from llm_upkeep.redact import redact

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path, text):
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_defaults_without_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LLM_UPKEEP_CONFIG", raising=False)
    cfg = load_config()
    assert cfg.health.ttft_alert_s == 10.0
    assert cfg.health.gpu_memory_alert_percent == 95
    assert cfg.health.disk_alert_percent == 85
    assert cfg.logs.compress_after_days == 30
    assert cfg.health.probe_prompt == "test"


def test_lookup_order(tmp_path, monkeypatch):
    a = write(tmp_path, "state_dir = '/a'\n")
    b = tmp_path / "b.toml"
    b.write_text("state_dir = '/b'\n")
    (tmp_path / "llm-upkeep.toml").write_text("state_dir = '/c'\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLM_UPKEEP_CONFIG", str(b))
    assert load_config(a).state_dir == "/a"
    assert load_config().state_dir == "/b"
    monkeypatch.delenv("LLM_UPKEEP_CONFIG")
    assert load_config().state_dir == "/c"


def test_error_names_key_and_file(tmp_path):
    p = write(tmp_path, "[health]\nttft_alert_s = 'fast'\n")
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    assert str(p) in str(ei.value) and "health.ttft_alert_s" in str(ei.value)


def test_unknown_key_is_an_error(tmp_path):
    p = write(tmp_path, "[[endpoints]]\nname='a'\napi='ollama'\nurl='http://x'\nmodel='m'\ntimout_s=3\n")
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    assert "endpoints[0].timout_s" in str(ei.value) and "unknown key" in str(ei.value)


def test_bad_api_and_url(tmp_path):
    with pytest.raises(ConfigError, match=r"endpoints\[0\]\.api"):
        parse_config({"endpoints": [{"name": "a", "api": "tgi", "url": "http://x", "model": "m"}]}, "f.toml")
    with pytest.raises(ConfigError, match=r"endpoints\[0\]\.url"):
        parse_config({"endpoints": [{"name": "a", "api": "ollama", "url": "x:1", "model": "m"}]}, "f.toml")


def test_duplicate_endpoint_names():
    e = {"name": "a", "api": "ollama", "url": "http://x", "model": "m"}
    with pytest.raises(ConfigError, match="duplicate"):
        parse_config({"endpoints": [e, e]}, "f.toml")


def test_invalid_toml_names_file(tmp_path):
    p = write(tmp_path, "[health\n")
    with pytest.raises(ConfigError, match="not valid TOML") as ei:
        load_config(p)
    assert str(p) in str(ei.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_secret_from_env_is_redacted(monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-verysecretvalue123")
    assert resolve_secret("MY_KEY", key="x") == "sk-verysecretvalue123"
    assert "verysecret" not in redact("error calling with key sk-verysecretvalue123")
    monkeypatch.delenv("MY_KEY")
    with pytest.raises(ConfigError) as ei:
        resolve_secret("MY_KEY", key="endpoints[a].api_key_env")
    assert "MY_KEY" in str(ei.value)


def test_redact_known_shapes():
    s = redact("post to https://hooks.slack.com/services/T123/B456/abcdefSECRET and xoxb-1234-5678-abcdefgh")
    assert "abcdefSECRET" not in s and "xoxb-1234" not in s
    assert "AKIAIOSFODNN7EXAMPLE" not in redact("key AKIAIOSFODNN7EXAMPLE")
    assert "tok123456789" not in redact("Authorization: Bearer tok123456789")


def _walk(model: type[BaseModel], prefix=""):
    for name, field in model.model_fields.items():
        if name == "source":
            continue
        yield prefix + name, field
        ann = field.annotation
        inner = getattr(ann, "__args__", (ann,))
        for t in inner:
            if isinstance(t, type) and issubclass(t, BaseModel):
                yield from _walk(t, prefix + name + ".")


def test_every_field_has_a_description():
    missing = [k for k, f in _walk(Config) if not f.description]
    assert not missing, missing


def test_example_file_is_valid_and_documents_every_key():
    path = ROOT / "examples" / "llm-upkeep.toml"
    cfg = load_config(path)
    assert cfg.endpoints
    text = path.read_text()
    def documented(k):
        return f"{k.split('.')[-1]} =" in text or f"[{k}]" in text or f"[[{k}]]" in text

    undocumented = [k for k, _ in _walk(Config) if not documented(k)]
    assert not undocumented, f"keys missing from examples/llm-upkeep.toml: {undocumented}"
    tomllib.loads(text)
