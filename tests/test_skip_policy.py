"""The CI skip policy (tests/skip_policy.py) really fails a run that skips, and only then.

Each case runs a real pytest in a subprocess on a throwaway test file, so the exit code checked
is the one .ci/run sees.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.skip_policy import ALLOWLIST, ci_enabled, load_allowlist, skip_reason

ROOT = Path(__file__).resolve().parents[1]

SKIPPING = """
import pytest

def test_runs():
    assert True

@pytest.fixture
def gpu():
    pytest.skip("needs a GPU (none on this machine)")

def test_in_fixture(gpu):
    pass

def test_plain():
    pytest.skip("chromium missing")
"""

CONFTEST = """
import re
from tests.skip_policy import SkipPolicy

def pytest_configure(config):
    config.pluginmanager.register(SkipPolicy({ci}, [re.compile(p) for p in {patterns!r}]), "policy")
"""


def run_pytest(tmp_path: Path, body: str, *, ci: str | None, patterns: list[str] | None = None,
               args: tuple[str, ...] = ()) -> subprocess.CompletedProcess:  # fmt: skip
    (tmp_path / "test_case.py").write_text(body)
    plugin: list[str] = []
    if patterns is None:
        plugin = ["-p", "tests.skip_policy"]  # the real plugin with the real allow-list
    else:
        (tmp_path / "conftest.py").write_text(CONFTEST.format(ci=ci == "true", patterns=patterns))
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(ROOT)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         "-c", os.devnull, *plugin, *args, str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_skip_fails_the_run_under_ci_and_names_its_reason(tmp_path):
    p = run_pytest(tmp_path, SKIPPING, ci="true")
    assert p.returncode == 1, p.stdout[-2000:]
    assert "skipped 1: needs a GPU (none on this machine) [REFUSED under CI]" in p.stdout
    assert "skipped 1: chromium missing [REFUSED under CI]" in p.stdout
    assert "passed 1, failed 0, errors 0, skipped 2, xpassed 0" in p.stdout


def test_without_ci_a_skip_is_reported_but_passes(tmp_path):
    p = run_pytest(tmp_path, SKIPPING, ci=None)
    assert p.returncode == 0, p.stdout[-2000:]
    assert "skipped 1: chromium missing [not allowed in CI]" in p.stdout


def test_allowed_reasons_pass_under_ci_and_others_still_fail(tmp_path):
    p = run_pytest(tmp_path, SKIPPING, ci="true", patterns=["needs a GPU", "^chromium missing$"])
    assert p.returncode == 0, p.stdout[-2000:]
    assert "[allowed]" in p.stdout and "REFUSED" not in p.stdout
    p = run_pytest(tmp_path, SKIPPING, ci="true", patterns=["needs a GPU"])
    assert p.returncode == 1, p.stdout[-2000:]
    assert "skipped 1: chromium missing [REFUSED under CI]" in p.stdout


def test_a_module_level_skip_and_an_xfail_count_too(tmp_path):
    body = "import pytest\npytest.skip('whole module off', allow_module_level=True)\n"
    p = run_pytest(tmp_path, body, ci="true", patterns=[])
    assert p.returncode == 1 and "whole module off [REFUSED under CI]" in p.stdout, p.stdout[-2000:]
    (tmp_path / "test_case.py").unlink()
    body = "import pytest\n@pytest.mark.xfail(reason='known bad')\ndef test_x():\n    assert False\n"
    p = run_pytest(tmp_path, body, ci="true", patterns=[])
    assert p.returncode == 1 and "xfail: known bad [REFUSED under CI]" in p.stdout, p.stdout[-2000:]


def test_failures_and_empty_runs_keep_their_exit_codes(tmp_path):
    p = run_pytest(tmp_path, "def test_bad():\n    assert False\n", ci="true")
    assert p.returncode == 1, p.stdout[-2000:]
    p = run_pytest(tmp_path, "def helper():\n    pass\n", ci="true")
    assert p.returncode == 5, p.stdout[-2000:]  # .ci/run turns 5 (nothing collected) into a failure
    p = run_pytest(tmp_path, "def test_ok():\n    pass\n", ci="true")
    assert p.returncode == 0 and "no test skipped" in p.stdout, p.stdout[-2000:]


def test_ci_values_and_allowlist_file(tmp_path):
    assert ci_enabled({"CI": "true"}) and ci_enabled({"CI": "1"}) and ci_enabled({"CI": "True"})
    assert not ci_enabled({}) and not ci_enabled({"CI": ""}) and not ci_enabled({"CI": "false"})
    load_allowlist(ALLOWLIST)  # the committed list parses
    bad = tmp_path / "list.txt"
    bad.write_text("# fine\n\nok\n(unclosed\n")
    with pytest.raises(pytest.UsageError, match=r"list.txt:4: bad pattern '\(unclosed'"):
        load_allowlist(bad)


def test_skip_reason_reads_pytest_reports():
    class R:
        longrepr = ("f.py", 3, "Skipped: no chromium")

    assert skip_reason(R()) == "no chromium"
