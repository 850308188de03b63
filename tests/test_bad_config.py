"""Malformed configs through the real CLI: each is exit 2 and one line naming the file (and the
key where there is one), never a traceback. docs/bad-input.md lists the cases."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CASES = {
    # name: (file bytes, text the error line must contain)
    "not_utf8": (b'state_dir = "/srv/\xff\xfe"\n', "not UTF-8 text (byte 0xff at offset 18)"),
    "utf16_bom": ('state_dir = "/srv"\n'.encode("utf-16"), "not UTF-8 text"),
    "not_toml": (b"[endpoints\nname = 1\n", "not valid TOML"),
    "nul_byte": (b'state_dir = "/srv\x00"\n', "not valid TOML"),
    "unknown_key": (b"[health]\nprobe_promt = 'x'\n", "health.probe_promt"),
    "wrong_type": (b"[health]\nprobe_max_tokens = 'many'\n", "health.probe_max_tokens"),
    "out_of_range": (b"[models]\nkeep_versions = 1\n", "models.keep_versions"),
    "table_for_list": (b'[endpoints]\nname = "a"\n', "endpoints"),
    "list_for_table": (b"backup = [1, 2]\n", "backup"),
    "bad_endpoint_url": (b'[[endpoints]]\nname = "a"\napi = "ollama"\nurl = 5\nmodel = "m"\n', "endpoints"),
    "huge_number": (b"[health]\nprobe_max_tokens = 99999999999999999999\n", "health.probe_max_tokens"),
}


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "LLM_UPKEEP_CONFIG"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "llm_upkeep.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_config_is_exit_2_with_one_clear_line(tmp_path, name):
    data, expect = CASES[name]
    cfg = tmp_path / "llm-upkeep.toml"
    cfg.write_bytes(data)
    before = sorted(p.name for p in tmp_path.iterdir())
    p = run_cli(["config", "check", "--config", str(cfg)], tmp_path)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr and "Traceback" not in p.stdout, p.stderr
    line = p.stderr.strip().splitlines()[0]
    assert line.startswith("llm-upkeep: config error: ") and str(cfg) in line, p.stderr
    assert expect in p.stderr, p.stderr
    assert sorted(x.name for x in tmp_path.iterdir()) == before  # nothing written


def test_a_directory_or_missing_file_as_config_is_exit_2(tmp_path):
    for target in (tmp_path, tmp_path / "missing.toml"):
        p = run_cli(["config", "check", "--config", str(target)], tmp_path)
        assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
        assert "config file not found" in p.stderr
