"""Nothing checked is not "ok": in an empty folder with no config anywhere every command that
checks or acts on the host exits 2, names where it looked and suggests `llm-upkeep init`; a daily
health that probed nothing and a models verify that verified nothing do not pass."""

from __future__ import annotations

import argparse
import json
import sys

import pytest

from llm_upkeep import cli
from llm_upkeep.noconfig import COMMANDS_WITHOUT_CONFIG
from tests.fakes import pynvml as fake_nvml


def commands() -> list[list[str]]:
    """Every leaf command of the parser with dummy values for its required arguments."""
    out = []

    def walk(parser, prefix):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            argv = list(prefix)
            for a in parser._actions:
                if a.dest == "help" or not (a.required or not a.option_strings):
                    continue
                value = a.choices[0] if a.choices else "x"
                argv += [*a.option_strings[:1], value]
            if any(a.dest == "json" for a in parser._actions):
                argv.append("--json")
            out.append(argv)
            return
        for name, sp in subs[0].choices.items():
            walk(sp, [*prefix, name])

    walk(cli.build_parser(), [])
    return [c for c in out if c[0] not in COMMANDS_WITHOUT_CONFIG]


COMMANDS = commands()


def test_the_walk_finds_the_commands_that_matter():
    names = {" ".join(c[:2]) for c in COMMANDS}
    assert {"run daily-health", "models verify", "config check", "run weekly-review", "run cost-review",
            "backup run", "run runbook"} <= names  # fmt: skip


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(c[:2]) for c in COMMANDS])
def test_no_config_anywhere_exits_2_and_names_where_it_looked(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LLM_UPKEEP_CONFIG", raising=False)
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code == 2
    assert str(tmp_path / "llm-upkeep.toml") in err and "LLM_UPKEEP_CONFIG: not set" in err
    assert "llm-upkeep init" in err
    if "--json" in argv:
        (line,) = out.strip().splitlines()
        doc = json.loads(line)
        assert doc["error"] == "config" and any(str(tmp_path) in p for p in doc["looked_in"])
        assert "llm-upkeep init" in doc["hint"]
    assert not (tmp_path / "llm-upkeep.toml").exists()


def test_a_named_missing_config_is_still_its_own_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["config", "check", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "nope.toml: config file not found" in capsys.readouterr().err


def write_config(tmp_path, text: str) -> str:
    p = tmp_path / "llm-upkeep.toml"
    p.write_text(f'state_dir = "{tmp_path / "state"}"\n' + text)
    return str(p)


@pytest.mark.prefect
def test_daily_health_that_probed_nothing_is_not_ok(prefect_harness, tmp_path, monkeypatch, capsys):
    fake_nvml.configure(init_error=fake_nvml.NVMLError_LibraryNotFound)
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml)
    cfg = write_config(tmp_path, "")
    code = cli.main(["run", "daily-health", "--config", cfg, "--json", "--no-runbook"])
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 2 and doc["status"] == "nothing_checked"
    assert "no endpoint is configured" in doc["note"] and "llm-upkeep init" in doc["note"]


def test_models_verify_that_verified_nothing_is_not_ok(tmp_path, capsys):
    cfg = write_config(tmp_path, "")
    code = cli.main(["models", "verify", "--config", cfg, "--json"])
    doc = json.loads(capsys.readouterr().out.strip())
    assert code == 2 and doc["ok"] is False and doc["error"] == "nothing_checked"
    assert "no managed endpoints" in doc["message"]
