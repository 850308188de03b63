"""Pytest plugin: under CI a skipped test fails the run unless tests/skip-allowlist.txt allows its reason.

Why: pytest exits 0 when tests skip, so a CI machine that lacks Chromium, llama.cpp or a
package would pass while testing less than the suite says. Locally (no ``CI``) a skip stays a
skip; either way the end of the run prints how many tests passed and every skip reason, so a
reader sees what was not tested.

An entry of the allow-list is a Python regular expression searched in the skip reason; each
one says, in a comment above it, why no CI machine can meet the condition.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest

ALLOWLIST = Path(__file__).with_name("skip-allowlist.txt")


def ci_enabled(env: dict[str, str] | os._Environ = os.environ) -> bool:
    """True when the run is CI's (``CI`` set to a true value, as CI services and .ci/run set it)."""
    return env.get("CI", "").strip().lower() in ("1", "true", "yes", "on")


def load_allowlist(path: Path = ALLOWLIST) -> list[re.Pattern[str]]:
    """The allow-list's patterns; blank lines and ``#`` comments are ignored. A bad pattern names
    its line, so a typo cannot silently allow nothing or everything."""
    patterns: list[re.Pattern[str]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            patterns.append(re.compile(text))
        except re.error as exc:
            raise pytest.UsageError(f"{path}:{n}: bad pattern {text!r}: {exc}") from exc
    return patterns


def skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    """The reason pytest shows for a skipped (or xfailed) report."""
    wasxfail = getattr(report, "wasxfail", None)
    if wasxfail is not None:
        return f"xfail: {wasxfail}".rstrip(": ")
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
    else:
        reason = str(longrepr)
    return reason.removeprefix("Skipped: ")


def allowed_by(reason: str, patterns: list[re.Pattern[str]]) -> re.Pattern[str] | None:
    return next((p for p in patterns if p.search(reason)), None)


class SkipPolicy:
    """Collects skip reasons while the run goes, decides at the end."""

    def __init__(self, ci: bool, patterns: list[re.Pattern[str]]):
        self.ci = ci
        self.patterns = patterns
        self.skips: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()

    def _note(self, report: pytest.TestReport | pytest.CollectReport) -> None:
        if not report.skipped:
            return
        reason = skip_reason(report)
        self.skips[reason] += 1
        if allowed_by(reason, self.patterns) is None:
            self.refused[reason] += 1

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._note(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self._note(report)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        # A clean run with a refused skip becomes a failed one, and so does one whose every test
        # was skipped at collection (pytest's "no tests collected"); failures, usage errors and
        # interruptions already fail and keep their own code.
        clean = (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
        if self.ci and self.refused and session.exitstatus in clean:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter, exitstatus: int, config: pytest.Config) -> None:
        stats = terminalreporter.stats
        counts = {
            "passed": len([r for r in stats.get("passed", []) if getattr(r, "when", "call") == "call"]),
            "failed": len(stats.get("failed", [])),
            "errors": len(stats.get("error", [])),
            "skipped": sum(self.skips.values()),
            "xpassed": len(stats.get("xpassed", [])),
        }
        tw = terminalreporter
        tw.section("test counts")
        tw.line(", ".join(f"{k} {v}" for k, v in counts.items()))
        if not self.skips:
            tw.line("no test skipped")
            return
        for reason, n in sorted(self.skips.items()):
            if reason not in self.refused:
                verdict = "allowed"
            else:
                verdict = "REFUSED under CI" if self.ci else "not allowed in CI"
            tw.line(f"skipped {n}: {reason} [{verdict}]")
        if self.ci and self.refused:
            tw.line(
                f"CI: {sum(self.refused.values())} skip(s) whose reason {ALLOWLIST.name} does not allow: "
                "install what they name (see .ci/run) or fix the test",
                red=True,
            )


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SkipPolicy(ci_enabled(), load_allowlist()), "llm-upkeep-skip-policy")
