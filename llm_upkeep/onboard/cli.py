"""`llm-upkeep init`: discover, write an annotated config and models.lock, validate, say what next.

Exit codes: 0 written and valid; 1 no LLM server found (nothing written); 2 a config exists and
--force was not given, or the written config does not validate (it is then not left in place).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from llm_upkeep.cli import EXIT_DEGRADED, EXIT_OK, EXIT_USAGE, emit_json
from llm_upkeep.config import DEFAULT_CONFIG_NAME, default_state_dir, load_config
from llm_upkeep.configbase import ConfigError
from llm_upkeep.onboard.discover import KNOWN_PORTS, discover_servers
from llm_upkeep.onboard.host import OLLAMA_STORES, probe_host
from llm_upkeep.onboard.render import render_config


def _ports(text: str) -> tuple[int, ...]:
    try:
        ports = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise ConfigError(
            f"--ports must be comma-separated port numbers, got {text!r}", key="--ports"
        ) from None
    if not ports or any(not 0 < p < 65536 for p in ports):
        raise ConfigError(f"--ports must be port numbers 1-65535, got {text!r}", key="--ports")
    return ports


def _write_validated(path: Path, text: str):
    """Write beside the target, validate the written file, then move it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".llm-upkeep-init-", suffix=".toml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        load_config(tmp)  # raises ConfigError naming the key
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return load_config(path)


def cmd_init(args) -> int:
    out = Path(args.config or DEFAULT_CONFIG_NAME).absolute()
    if out.exists() and not args.force:
        msg = f"{out} exists; not overwritten (pass --force to replace it)"
        print(f"llm-upkeep init: {msg}", file=sys.stderr)
        if args.json:
            emit_json({"ok": False, "error": "exists", "message": msg, "config": str(out)})
        return EXIT_USAGE
    addresses = tuple(args.address or ["127.0.0.1"])
    ports = _ports(args.ports) if args.ports else KNOWN_PORTS
    servers = asyncio.run(
        discover_servers(addresses, ports, listening=not args.no_listening, timeout_s=args.timeout)
    )
    where = f"{', '.join(addresses)} ports {', '.join(map(str, ports))}" + (
        "" if args.no_listening else " + listening"
    )
    if not servers:
        msg = f"no LLM server answered on {where}; nothing written (start your server, or pass --ports)"
        print(f"llm-upkeep init: {msg}", file=sys.stderr)
        if args.json:
            emit_json({"ok": False, "error": "nothing_found", "message": msg})
        return EXIT_DEGRADED
    stores = (args.ollama_models_dir,) if args.ollama_models_dir else OLLAMA_STORES
    facts = probe_host({s.kind for s in servers}, ollama_stores=stores)
    state_dir = os.path.abspath(os.path.expanduser(args.state_dir or default_state_dir()))
    cfg = _write_validated(out, render_config(servers, facts, state_dir))
    pinned = None
    if not args.no_pin:
        from llm_upkeep.models.endpoints import managed_endpoints
        from llm_upkeep.models.pins import pin_models

        if managed_endpoints(cfg):
            pinned = pin_models(cfg)
    nxt = f"llm-upkeep run daily-health --config {out}"
    if args.json:
        emit_json({
            "ok": True, "config": str(out), "servers": [s.__dict__ for s in servers],
            "gpus": len(facts.gpus.gpus), "models_lock": pinned.public() if pinned else None, "next": nxt,
        })  # fmt: skip
    else:
        print(f"llm-upkeep init: wrote {out} (valid)")
        for e, s in zip(cfg.endpoints, servers, strict=True):
            print(f"  endpoint {e.name}: {s.kind} at {s.url}, model {e.model} ({len(s.models)} model(s))")
        print(
            f"  GPUs: {len(facts.gpus.gpus) if facts.gpus.status == 'ok' else 'none (' + str(facts.gpus.reason) + ')'}"
        )
        if pinned:
            print(f"  models.lock: {pinned.lock_file} ({sum(map(len, pinned.pinned.values()))} pinned)")
        print(f"next: {nxt}")
    return EXIT_OK


def add_init_command(sub) -> None:
    p = sub.add_parser("init", help="find this host's LLM servers, GPUs and logs; write a config")
    p.add_argument("--config", metavar="F", help=f"config file to write (default ./{DEFAULT_CONFIG_NAME})")
    p.add_argument("--force", action="store_true", help="replace an existing config file")
    p.add_argument("--state-dir", metavar="DIR", help="state_dir to write into the config")
    p.add_argument(
        "--address", action="append", metavar="A", help="address to probe (repeatable; default 127.0.0.1)"
    )
    p.add_argument(
        "--ports", metavar="P,P", help=f"ports to probe (default {','.join(map(str, KNOWN_PORTS))})"
    )
    p.add_argument(
        "--no-listening", action="store_true", help="probe only --ports, not every listening socket"
    )
    p.add_argument(
        "--ollama-models-dir", metavar="DIR", help="Ollama's model store (default: its usual places)"
    )
    p.add_argument("--timeout", type=float, default=2.0, metavar="S", help="timeout of each probe request")
    p.add_argument("--no-pin", action="store_true", help="do not write models.lock")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.set_defaults(func=cmd_init)
