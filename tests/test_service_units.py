"""The shipped systemd units and polkit rule, checked with the real tools.

- `systemd-analyze verify` on both units, as shipped. It checks that ExecStart's binary exists, so
  the test installs the project at the units' path (/opt/llm-upkeep/.venv/bin/llm-upkeep, the
  real entry point) inside a private mount namespace (tmpfs over /opt): needs root, as in CI.
- `systemd-analyze security --offline=true`: both units rate 4.0 or lower, and the figures in
  docs/operations.md are the current ones.
- The polkit rule, run under Node with polkit's calling convention: restart of a listed unit by
  the service user is allowed, anything else falls through.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNITS = [ROOT / "deployments" / "llm-upkeep-serve.service", ROOT / "deployments" / "llm-upkeep-worker@.service"]
RULE = ROOT / "deployments" / "50-llm-upkeep.rules"
MAX_EXPOSURE = 4.0

needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")


def entry_point() -> str:
    """The installed `llm-upkeep` console script of this interpreter's environment."""
    p = Path(sys.executable).parent / "llm-upkeep"
    return str(p) if p.exists() else shutil.which("llm-upkeep") or ""


@needs_analyze
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare")
def test_units_verify_as_shipped():
    exe = entry_point()
    assert exe, "llm-upkeep is not installed in this environment"
    script = (
        'set -e; mount -t tmpfs tmpfs /opt; mkdir -p /opt/llm-upkeep/.venv/bin; '
        'ln -s "$0" /opt/llm-upkeep/.venv/bin/llm-upkeep; exec systemd-analyze verify --man=no "$@"'
    )
    p = subprocess.run(["unshare", "-m", "--", "sh", "-c", script, exe, *map(str, UNITS)],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    out = (p.stdout + p.stderr).strip()
    assert p.returncode == 0 and not out, out


@needs_analyze
def test_units_verify_fails_on_a_broken_unit(tmp_path):
    """The verify step can fail: a misspelt directive in a copy of the unit is reported."""
    bad = tmp_path / "llm-upkeep-serve.service"
    bad.write_text(UNITS[0].read_text().replace("ProtectSystem=strict", "ProtectSystm=strict"))
    p = subprocess.run(["systemd-analyze", "verify", "--man=no", str(bad)], capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    assert "ProtectSystm" in p.stdout + p.stderr


def exposure(unit: Path) -> tuple[float, str]:
    p = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", str(unit)],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", p.stdout + p.stderr)
    assert m, p.stdout[-2000:] + p.stderr[-2000:]
    return float(m.group(1)), m.group(2)


@needs_analyze
@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_units_exposure_is_ok_and_documented(unit):
    level, word = exposure(unit)
    assert level <= MAX_EXPOSURE, f"{unit.name}: {level} {word}"
    docs = (ROOT / "docs" / "operations.md").read_text()
    row = next((line for line in docs.splitlines() if line.startswith(f"| `{unit.name}` |")), "")
    assert row.rstrip().endswith(f"| {level:.1f} {word} |"), f"docs/operations.md says {row!r}, measured {level} {word}"


@needs_analyze
def test_units_have_the_required_settings():
    for unit in UNITS:
        text = unit.read_text()
        for line in ("StateDirectory=llm-upkeep", "ProtectSystem=strict", "NoNewPrivileges=yes", "ProtectHome=yes",
                     "PrivateTmp=yes", "UMask=0077", "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service",
                     "ProtectKernelTunables=yes", "ProtectKernelModules=yes", "ProtectKernelLogs=yes",
                     "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"):  # fmt: skip
            assert line in text, f"{unit.name} lacks {line.strip()}"
        assert "ReadWritePaths=/etc" not in text and "ProtectSystem=full" not in text


NODE_HARNESS = r"""
const fs = require("fs");
const rules = [];
const polkit = {Result: {YES: "yes", NO: "no", AUTH_ADMIN: "auth_admin", NOT_HANDLED: null},
                addRule: (f) => rules.push(f), log: () => {}};
new Function("polkit", fs.readFileSync(process.argv[1], "utf8"))(polkit);
const cases = JSON.parse(process.argv[2]);
const out = cases.map(([id, user, unit, verb]) => {
  const action = {id, lookup: (k) => ({unit, verb})[k]};
  for (const r of rules) { const v = r(action, {user}); if (v !== null && v !== undefined) return v; }
  return null;
});
console.log(JSON.stringify(out));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node missing")
def test_polkit_rule_grants_only_restarts_of_listed_units():
    import json

    manage = "org.freedesktop.systemd1.manage-units"
    cases = [
        [manage, "llm-upkeep", "ollama.service", "restart"],
        [manage, "llm-upkeep", "vllm.service", "try-restart"],
        [manage, "llm-upkeep", "ollama.service", "stop"],
        [manage, "llm-upkeep", "sshd.service", "restart"],
        [manage, "someone", "ollama.service", "restart"],
        ["org.freedesktop.systemd1.manage-unit-files", "llm-upkeep", "ollama.service", "restart"],
        ["org.freedesktop.login1.reboot", "llm-upkeep", None, None],
    ]
    p = subprocess.run(["node", "-e", NODE_HARNESS, str(RULE), json.dumps(cases)], capture_output=True,
                       text=True, timeout=60)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == ["yes", "yes", None, None, None, None, None]
