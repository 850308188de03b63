"""`llm-upkeep init` on loopback: the simulator in Ollama and vLLM dialects and the real llama.cpp
server (llama-cpp-python). The written config passes `config check` and a daily health with it is
ok; an existing config is not overwritten without --force; only the given loopback ports are
probed (--no-listening), so the test never touches another process's sockets."""

from __future__ import annotations

import asyncio
import json
import tomllib
from pathlib import Path

import pytest

from llm_upkeep import cli
from llm_upkeep.models.store import write_model
from llm_upkeep.onboard.discover import identify
from llm_upkeep.sim.ollama_store import fake_weights, store_behavior

VLLM_ONLY = {"/api/version": 404, "/api/tags": 404, "/api/ps": 404, "/api/show": 404}


@pytest.fixture
def three_servers(sim_factory, llamacpp_server, tmp_path):
    store, registry = tmp_path / "ollama-store", tmp_path / "registry"
    tmpl = [("application/vnd.ollama.image.template", b"{{ .Prompt }}")]
    write_model(store, "llama3:8b", fake_weights(1), extra_layers=tmpl)
    write_model(store, "qwen2.5:7b", fake_weights(2), extra_layers=tmpl)
    registry.mkdir()
    ollama = sim_factory(store_behavior(store, registry, "llama3:8b", ttft_s=0.02, itl_s=0.002, tokens=8))
    vllm = sim_factory(model="meta-llama/Llama-3.1-8B-Instruct", route_status=dict(VLLM_ONLY), ttft_s=0.02,
                       itl_s=0.002, tokens=8)  # fmt: skip
    return ollama, vllm, llamacpp_server, store


def run_init(capsys, tmp_path, servers, *extra):
    ollama, vllm, llama, store = servers
    ports = ",".join(str(s.url.rsplit(":", 1)[1]) for s in (ollama, vllm, llama))
    argv = ["init", "--config", str(tmp_path / "llm-upkeep.toml"), "--ports", ports, "--no-listening",
            "--state-dir", str(tmp_path / "state"), "--ollama-models-dir", str(store), "--json", *extra]  # fmt: skip
    code = cli.main(argv)
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1])


@pytest.mark.prefect
def test_init_finds_three_servers_and_writes_a_config_that_checks_and_runs(
    prefect_harness, three_servers, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    code, doc = run_init(capsys, tmp_path, three_servers)
    assert code == 0, doc
    kinds = {s["kind"]: s for s in doc["servers"]}
    assert set(kinds) == {"ollama", "vllm", "llamacpp"}
    assert (
        kinds["ollama"]["models"] == ["llama3:8b", "qwen2.5:7b"] and kinds["ollama"]["digests"]["llama3:8b"]
    )
    assert kinds["vllm"]["models"] == ["meta-llama/Llama-3.1-8B-Instruct"]
    assert kinds["llamacpp"]["models"] == ["tiny"]
    path = tmp_path / "llm-upkeep.toml"
    text = path.read_text()
    assert "# Found: ollama 0.12.6 answering on port" in text and "llama-cpp-python server" in text
    data = tomllib.loads(text)
    assert {e["name"]: e["api"] for e in data["endpoints"]} == {"ollama": "ollama", "vllm": "openai",
                                                               "llamacpp": "openai"}  # fmt: skip
    assert data["models"]["ollama_models_dir"] == str(three_servers[3])
    # models.lock lives where the config's lock path says (state_dir by default), as init reports
    lock_file = Path(doc["models_lock"]["lock_file"])
    assert lock_file == Path(data["state_dir"]) / "models.lock", lock_file
    lock = tomllib.loads(lock_file.read_text())
    assert "llama3:8b" in json.dumps(lock) and "qwen2.5:7b" in json.dumps(lock)
    assert doc["next"] == f"llm-upkeep run daily-health --config {path}"

    assert cli.main(["config", "check", "--config", str(path)]) == 0
    capsys.readouterr()
    assert cli.main(["models", "verify", "--config", str(path), "--json"]) == 0
    capsys.readouterr()

    from flows.daily_health import daily_health

    result = asyncio.run(daily_health(config_path=str(path), chain_runbook=False))
    assert result.status == "ok", [c.public() for c in result.checks if c.status != "ok"]
    assert {c.target for c in result.checks if c.check == "endpoint_up"} == {"ollama", "vllm", "llamacpp"}


def test_init_refuses_to_overwrite_without_force(three_servers, tmp_path, capsys):
    path = tmp_path / "llm-upkeep.toml"
    path.write_text("# mine\n")
    code, doc = run_init(capsys, tmp_path, three_servers, "--no-pin")
    assert code == 2 and doc["error"] == "exists" and path.read_text() == "# mine\n"
    code, doc = run_init(capsys, tmp_path, three_servers, "--no-pin", "--force")
    assert code == 0 and "[[endpoints]]" in path.read_text()


def test_nothing_found_writes_nothing(tmp_path, capsys):
    from tests.llamacpp_fixtures import free_port

    code = cli.main(["init", "--config", str(tmp_path / "c.toml"), "--ports", str(free_port()), "--no-listening",
                     "--json"])  # fmt: skip
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 1 and doc["error"] == "nothing_found" and not (tmp_path / "c.toml").exists()


def test_a_non_llm_http_server_is_not_a_server(sim_factory):
    import httpx

    sim = sim_factory(route_status={p: 404 for p in ("/api/version", "/version", "/v1/models", "/api/tags")})
    host, port = sim.url.removeprefix("http://").rsplit(":", 1)

    async def go():
        async with httpx.AsyncClient() as http:
            return await identify(http, host, int(port), 2.0)

    assert asyncio.run(go()) is None


def test_gpus_units_and_logs_are_written_and_valid(tmp_path):
    from llm_upkeep.config import parse_config
    from llm_upkeep.onboard.discover import FoundServer
    from llm_upkeep.onboard.host import probe_host
    from llm_upkeep.onboard.render import render_config
    from tests.fakes import pynvml as fake_nvml

    fake_nvml.configure(devices=[fake_nvml.FakeDevice(), fake_nvml.FakeDevice(uuid="GPU-1")])
    units = tmp_path / "units"
    units.mkdir()
    (units / "ollama.service").write_text("[Service]\nExecStart=/usr/bin/ollama serve\n")
    kern = tmp_path / "kern.log"
    kern.write_text("")
    facts = probe_host({"ollama", "vllm"}, unit_dirs=(str(units),), ollama_stores=(), kernel_logs=(str(kern),),
                       nvml_module=fake_nvml)  # fmt: skip
    servers = [FoundServer("ollama", "ollama", "http://127.0.0.1:11434", 11434, "0.12.6", ["llama3:8b"]),
               FoundServer("vllm", "openai", "http://127.0.0.1:8000", 8000, "0.11.0", ["m"])]  # fmt: skip
    text = render_config(servers, facts, str(tmp_path / "state"))
    cfg = parse_config(tomllib.loads(text), "init")
    assert cfg.gpu.enabled and "2 GPU(s)" in text
    (j,) = [s for s in cfg.review.sources if s.kind == "journal"]
    assert (j.unit, j.format) == ("ollama", "ollama") and j.cursor_file.endswith("journal-ollama.cursor")
    assert {(r.name, r.unit, tuple(r.endpoints)) for r in cfg.runbook.logs if r.unit} == {
        ("ollama-journal", "ollama", ("ollama",))
    }
    assert [r.path for r in cfg.runbook.logs if r.kind == "kernel"] == [str(kern)]
