"""Commands that print far more than anyone reads: the runbook's log command, the restart command
and the journal reader hold a bounded tail (or skip an oversized line), never all of it.

Memory is measured with tracemalloc (what Python allocated for the output), against the
command's output size: 209 MB printed must cost a few MiB at most.
"""

from __future__ import annotations

import json
import time
import tracemalloc

import pytest

from llm_upkeep.bounded_run import KEEP_BYTES
from llm_upkeep.config import RestartConfig
from llm_upkeep.journal import MAX_LINE_BYTES, read_journal
from llm_upkeep.restart import restart_server
from llm_upkeep.runbook.logs import tail_command

FLOOD = ["sh", "-c", "yes 'a log line' | head -n 19000000; echo last line"]  # 209 MB
# The kept tails (at most 2 x KEEP_BYTES per stream while reading) plus their decoding into lines
# (about 9 MiB here, whatever the output's size): a constant, where holding it all costs 209 MB+.
BOUND = 16 * KEEP_BYTES


def _peak(fn):
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_tail_command_keeps_a_bounded_tail_of_a_flood():
    lines, peak = _peak(lambda: tail_command(FLOOD, 3, 60.0))
    assert lines == ["a log line", "a log line", "last line"]
    assert peak < BOUND, peak  # 209 MB printed


def test_tail_command_of_an_endless_command_stops_at_its_timeout():
    timeout = 1.0
    t0 = time.monotonic()
    with pytest.raises(OSError, match="timed out"):
        _peak(lambda: tail_command(["yes"], 5, timeout))
    assert time.monotonic() - t0 < 3 * timeout


def test_restart_output_is_a_bounded_tail_marked_truncated(tmp_path):
    cfg = RestartConfig(command=FLOOD, dry_run=False, timeout_s=60)
    out, peak = _peak(lambda: restart_server(cfg, tmp_path, target="a", reason="flood"))
    assert out.decision == "executed" and out.returncode == 0
    lines = out.output_tail.splitlines()
    assert lines[0].startswith("[output truncated: the first ") and lines[-1] == "last line"
    assert len(lines) == 21
    assert peak < BOUND, peak


def test_journal_skips_a_line_longer_than_its_cap_without_holding_it(tmp_path):
    def entry(ts: int, msg: str) -> str:
        return json.dumps({"__REALTIME_TIMESTAMP": str(ts * 10**6), "MESSAGE": msg, "__CURSOR": f"c{ts}"})

    fake = tmp_path / "journalctl"
    fake.write_text(
        "#!/bin/sh\n"
        f"echo '{entry(1_700_000_000, 'before')}'\n"
        "head -c 100M /dev/zero | tr '\\0' x; echo\n"
        f"echo '{entry(1_700_000_001, 'after')}'\n"
    )
    fake.chmod(0o755)
    got, peak = _peak(lambda: read_journal("ollama", journalctl=str(fake), timeout_s=60))
    assert got.error is None, got.error
    assert [e.message for e in got.entries] == ["before", "after"] and got.oversized == 1
    assert peak < 4 * MAX_LINE_BYTES, peak  # the line is 100 MB
