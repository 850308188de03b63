"""systemd journal as a log source, on real journal files (systemd-journal-remote writes them from
export format, journalctl reads them): the unit filter, the window, the cursor that makes each
entry read once, classified failures; and a weekly review that finds planted OOM and crash lines
in Ollama's journal with their evidence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from llm_upkeep.journal import journal_command, read_journal
from llm_upkeep.review.config import LogSource, ReviewConfig
from llm_upkeep.review.errors import review_error_logs
from llm_upkeep.review.window import review_window
from tests.journal_helpers import entry, journal_tools_missing, write_journal

pytestmark = pytest.mark.skipif(bool(journal_tools_missing()), reason=journal_tools_missing() or "")

WEEK_END = datetime(2026, 11, 30, tzinfo=UTC)  # review week: Nov 23-29
T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)

OOM_LINE = 'time=2026-11-25T03:10:00.000Z level=ERROR source=server.go:612 msg="llama runner process has terminated: cudaMalloc failed: out of memory"'
PANIC_LINE = "panic: runtime error: invalid memory address or nil pointer dereference"
SYSTEMD_LINE = "ollama.service: Main process exited, code=killed, status=9/KILL"
RESTART_LINE = "ollama.service: Scheduled restart job, restart counter is at 3."


def ollama_week() -> list[dict]:
    es = []
    for i in range(30):  # ordinary request lines all week
        at = T0 - timedelta(days=1) + timedelta(minutes=7 * i)
        es.append(entry(at, f'[GIN] {at:%Y/%m/%d - %H:%M:%S} | 200 |  1.2s | 127.0.0.1 | POST "/api/chat"'))
    es.append(entry(T0 + timedelta(minutes=10), OOM_LINE, priority=3))
    for k in range(4):  # an OOM burst: the runner dies four times in a few minutes
        es.append(entry(T0 + timedelta(minutes=11, seconds=20 * k),
                        f'time=2026-11-25T03:11:{20 * k:02d}.000Z level=ERROR msg="failed to allocate {k + 2} GiB: out of memory"', priority=3))  # fmt: skip
    es.append(entry(T0 + timedelta(minutes=20), PANIC_LINE, priority=2))
    for n in range(3):
        es.append(entry(T0 + timedelta(minutes=20, seconds=1 + n), SYSTEMD_LINE, systemd=True, priority=5))
        es.append(entry(T0 + timedelta(minutes=20, seconds=5 + n), RESTART_LINE.replace("3", str(n + 1)),
                        systemd=True, priority=5))  # fmt: skip
    # Another unit's failures must not be counted for Ollama.
    es.append(entry(T0 + timedelta(minutes=30), "panic: docker daemon crashed", unit="docker.service"))
    es.sort(key=lambda e: int(e["__REALTIME_TIMESTAMP"]))
    return es


def test_reads_only_the_unit_and_the_window(tmp_path):
    f = write_journal(tmp_path / "j" / "ollama.journal", ollama_week())
    got = read_journal(
        "ollama", files=[str(f)], since=T0.timestamp(), until=(T0 + timedelta(hours=1)).timestamp()
    )
    assert got.error is None, got
    msgs = [e.message for e in got.entries]
    assert (
        OOM_LINE in msgs and PANIC_LINE in msgs and SYSTEMD_LINE in msgs
    )  # PID 1's lines about the unit too
    assert not any("docker" in m for m in msgs)
    assert not any("[GIN]" in m for m in msgs)  # before the window (the day before T0)
    assert all(T0.timestamp() <= e.ts < T0.timestamp() + 3600 for e in got.entries)
    assert got.entries[0].priority == 3


def test_cursor_makes_each_entry_read_once(tmp_path):
    d = tmp_path / "journal"
    write_journal(d / "a.journal", ollama_week())
    cur = tmp_path / "state" / "ollama.cursor"
    first = read_journal("ollama", directory=str(d), cursor_file=cur)
    assert len(first.entries) == 30 + 1 + 4 + 1 + 6 and cur.read_text().strip() == first.cursor
    again = read_journal("ollama", directory=str(d), cursor_file=cur)
    assert again.entries == [] and again.error is None
    later = T0 + timedelta(days=1)
    write_journal(d / "b.journal", [entry(later, "level=ERROR msg=\"new line\""),
                                    entry(later + timedelta(seconds=1), "level=INFO msg=\"newer\"")])  # fmt: skip
    new = read_journal("ollama", directory=str(d), cursor_file=cur)
    assert [e.message for e in new.entries] == ['level=ERROR msg="new line"', 'level=INFO msg="newer"']
    # With a cursor, journalctl takes --after-cursor instead of --since; the window still applies.
    cmd = journal_command("ollama", since=1.0, until=2.0, after_cursor="s=x")
    assert "--after-cursor" in cmd and "--since" not in cmd and "--until" in cmd


def test_failures_are_classified_not_raised(tmp_path):
    missing = read_journal("ollama", journalctl=str(tmp_path / "no-journalctl"))
    assert missing.error and "cannot run" in missing.error and missing.entries == []
    bad = read_journal("ollama", files=[str(tmp_path / "nope.journal")])
    assert bad.error and bad.entries == []
    cur = tmp_path / "c"
    cur.write_text("not-a-cursor\n")
    f = write_journal(tmp_path / "j" / "x.journal", ollama_week())
    garbled = read_journal("ollama", files=[str(f)], cursor_file=cur)
    assert garbled.error and cur.read_text() == "not-a-cursor\n"  # a failed read never moves the cursor


def test_weekly_review_over_a_real_journal_finds_planted_oom_and_crash_lines(tmp_path):
    d = tmp_path / "journal"
    write_journal(d / "system.journal", ollama_week())
    src = LogSource(name="ollama-journal", kind="journal", unit="ollama", format="ollama", journal_dir=str(d),
                    cursor_file=str(tmp_path / "state" / "ollama.cursor"))  # fmt: skip
    window = review_window(WEEK_END, baseline_weeks=4)
    r = review_error_logs(ReviewConfig(sources=[src], burst_min_count=3), window)
    assert r.totals["oom"] == 5 and r.totals["crash_restart"] == 7, r.totals  # docker's panic not counted
    (oom,) = [f for f in r.findings if f.cls == "oom" and f.kind == "burst"]
    assert oom.severity == "alert" and "out of memory" in oom.evidence[0]
    assert "journal-ollama" in oom.evidence[0]
    crash = [f for f in r.findings if f.cls == "crash_restart"]
    assert crash and any(PANIC_LINE in ev or SYSTEMD_LINE in ev for f in crash for ev in f.evidence)
    assert r.verdict == "alert"


def test_journal_source_config_needs_a_unit():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="needs unit"):
        LogSource(name="j", kind="journal")
    with pytest.raises(ValidationError, match="needs paths"):
        LogSource(name="f", kind="ollama")


def test_runbook_reads_the_units_journal_as_its_server_log(tmp_path):
    from llm_upkeep.runbook.config import RunbookLogSource
    from llm_upkeep.runbook.logs import classify_log_line, line_time, read_log

    d = tmp_path / "journal"
    write_journal(d / "system.journal", ollama_week())
    src = RunbookLogSource(name="ollama", kind="server", unit="ollama", journal_dir=str(d))
    tail = read_log(src, 12, timeout_s=30)
    assert tail.error is None and len(tail.lines) == 12
    assert any(OOM_LINE in ln for ln in tail.lines) and any(SYSTEMD_LINE in ln for ln in tail.lines)
    assert tail.lines[-1].endswith("restart counter is at 3.")  # newest last
    assert classify_log_line(next(ln for ln in tail.lines if OOM_LINE in ln)) == "oom"
    assert line_time(tail.lines[-1], now=T0.timestamp() + 3600) == pytest.approx(
        (T0 + timedelta(minutes=20, seconds=7)).timestamp(), abs=1
    )
    broken = read_log(RunbookLogSource(name="x", kind="server", unit="ollama", journal_dir=str(tmp_path / "none")),
                      5, timeout_s=30)  # fmt: skip
    assert broken.lines == [] or broken.error  # an empty or unreadable journal is evidence, not a crash


@pytest.mark.prefect
def test_weekly_review_flow_over_a_real_journal(prefect_harness, tmp_path):
    import tomli_w

    from flows.weekly_review import weekly_review
    from llm_upkeep.review.report import render_report

    d = tmp_path / "journal"
    write_journal(d / "system.journal", ollama_week())
    data = {"state_dir": str(tmp_path / "state"), "gpu": {"enabled": False},
            "review": {"burst_min_count": 3, "discover_candidates": False,
                       "sources": [{"name": "ollama", "kind": "journal", "unit": "ollama", "journal_dir": str(d),
                                    "cursor_file": str(tmp_path / "state" / "ollama.cursor")}]}}  # fmt: skip
    cfg = tmp_path / "llm-upkeep.toml"
    cfg.write_text(tomli_w.dumps(data))
    result = weekly_review(config_path=str(cfg), week_end=WEEK_END, send_slack=False)
    errors = result.sections["errors"]
    assert errors.verdict == "alert", errors.summary
    md = render_report(result)
    assert OOM_LINE.split(' msg="')[1][:40] in md and "journal-ollama" in md
    assert (tmp_path / "state" / "ollama.cursor").read_text().startswith("s=")
