"""Error-log review: planted incidents are found with their evidence, a clean week has none, the
scanner streams plain and .gz files in bounded memory, and chunking never changes the answer."""

from __future__ import annotations

import gzip
import os
import shutil
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest

from llm_upkeep.review.config import ReviewConfig
from llm_upkeep.review.errors import find_bursts, review_error_logs, robust_z
from llm_upkeep.review.logscan import LogScanner, classify_line, normalize_message, scan_logs
from llm_upkeep.review.report import WeeklyReviewResult, render_report, section_from
from llm_upkeep.review.window import review_window
from tests.review_fixtures import WEEK_END

WINDOW = review_window(WEEK_END, baseline_weeks=4)


def review(planted, **kw):
    return review_error_logs(ReviewConfig(sources=planted.sources, **kw), WINDOW)


def report_of(errors) -> str:
    result = WeeklyReviewResult(
        status="degraded",
        window_start=WINDOW.start,
        window_end=WINDOW.end,
        sections={"errors": section_from(errors)},
    )
    return render_report(result)


# ---------------------------------------------------------------- the acceptance weeks


def test_planted_incidents_are_found_with_their_evidence(planted_week):
    r = review(planted_week)
    md = report_of(r)
    kinds = {(f.kind, f.cls) for f in r.findings}
    assert r.verdict == "alert"

    # OOM burst: an alert, timed right, with the planted lines as evidence
    (oom,) = [f for f in r.findings if f.kind == "burst" and f.cls == "oom"]
    assert oom.severity == "alert" and oom.count == 6
    assert oom.first == planted_week.oom_burst_at + timedelta(seconds=3)
    assert "KV cache" in (oom.action or "")
    assert planted_week.oom_burst_lines[0] in oom.evidence[0]
    assert planted_week.oom_burst_lines[0] in md

    # repeated timeout: the same normalized message 24x, with the raw lines
    (rep,) = [f for f in r.findings if f.kind == "repeated" and f.cls == "timeout"]
    assert rep.count == planted_week.timeout_count
    assert planted_week.timeout_message in rep.title
    assert planted_week.timeout_first_line in rep.evidence[0]
    assert planted_week.timeout_first_line in md
    assert r.top_repeated[0].count == 24 and r.top_repeated[0].cls == "timeout"

    # traffic spike at 03:00 on the ollama source, and only there
    (spike,) = r.volume_anomalies
    assert (spike.source, spike.hour, spike.direction) == ("ollama", planted_week.spike_hour, "spike")
    assert spike.z > 10 and spike.baseline_hours >= 20
    assert "[GIN] 2026/11/25 - 03:" in spike.evidence[1]
    assert "Request spike on ollama" in md and "[GIN] 2026/11/25 - 03:" in md

    # XID 79 with NVIDIA's meaning and action
    (xid,) = [f for f in r.findings if f.kind == "xid"]
    assert xid.severity == "alert" and "XID 79" in xid.title and "0000:3b:00" in xid.title
    assert "fallen off the bus" in xid.title and "Drain the node" in xid.action
    assert planted_week.xid_line in xid.evidence[0]
    assert planted_week.xid_line in md

    # per class and day: the OOMs land on Thursday, the XID on Friday
    assert r.counts_by_day["2026-11-26"]["oom"] == 6
    assert r.counts_by_day["2026-11-27"]["xid"] == 1
    assert len(r.counts_by_day) == 7 and "| 2026-11-26 |" in md
    assert r.totals["timeout"] == 24 + 2
    assert ("coverage", None) not in kinds


def test_clean_week_has_no_incident(clean_week):
    r = review(clean_week)
    assert r.verdict == "ok", [f.title for f in r.findings]
    assert r.findings == [] and r.volume_anomalies == []
    assert r.volume_notes == []  # the baseline was there; volume really was checked
    # the two isolated timeouts are counted, not findings; startup INFO lines mention
    # timeouts and KV cache memory and are not counted at all
    assert r.totals == {"timeout": 2, "http_5xx": 0, "oom": 0, "cuda_error": 0, "xid": 0,
                        "crash_restart": 0, "connection_refused": 0}  # fmt: skip
    assert {c.status for c in r.checks} == {"ok"}
    assert "no incidents" in r.summary


def test_chunk_size_does_not_change_the_answer(planted_week):
    big = scan_logs(ReviewConfig(sources=planted_week.sources), WINDOW)
    small = scan_logs(ReviewConfig(sources=planted_week.sources, chunk_bytes=4096), WINDOW)
    assert small.counts == big.counts
    for name in big.volume:
        assert small.volume[name].hourly == big.volume[name].hourly, name
    assert sum(big.volume["ollama"].hourly.values()) > 10_000


def test_gzip_and_plain_give_the_same_scan(planted_week, tmp_path):
    src = planted_week.root / "vllm" / "vllm.log"
    gz = tmp_path / "vllm.log.gz"
    with open(src, "rb") as f, gzip.open(gz, "wb") as g:
        shutil.copyfileobj(f, g)
    os.utime(gz, (src.stat().st_mtime, src.stat().st_mtime))
    a = scan_logs(ReviewConfig(sources=[{"name": "v", "kind": "vllm", "paths": [str(src)]}]), WINDOW)
    b = scan_logs(ReviewConfig(sources=[{"name": "v", "kind": "vllm", "paths": [str(gz)]}]), WINDOW)
    assert b.files[0].compressed and not a.files[0].compressed
    assert a.counts == b.counts and a.volume["v"].hourly == b.volume["v"].hourly
    assert a.lines == b.lines > 0


def test_memory_stays_bounded_on_a_large_file(tmp_path):
    """60 MB through a 256 KiB chunk: peak Python memory stays near the chunk, not the file."""
    path = tmp_path / "big.log"
    t0 = WEEK_END - timedelta(days=3)
    block = []
    for i in range(2000):
        ts = t0 + timedelta(seconds=i)
        block.append(
            f'[GIN] {ts:%Y/%m/%d - %H:%M:%S} | 200 |   1.2s |  10.0.0.{i % 250} | POST     "/api/chat"\n'
        )
        if i % 100 == 0:
            block.append(
                f'time={ts:%Y-%m-%dT%H:%M:%S}.000Z level=ERROR msg="request failed" error="timed out {i}"\n'
            )
    data = "".join(block).encode()
    with open(path, "wb") as f:
        for _ in range(60 * 1024 * 1024 // len(data)):
            f.write(data)
    cfg = ReviewConfig(
        sources=[{"name": "o", "kind": "ollama", "paths": [str(path)]}], chunk_bytes=256 * 1024
    )
    tracemalloc.start()
    scan = scan_logs(cfg, WINDOW)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert scan.bytes_read == path.stat().st_size
    assert scan.total_by_class["timeout"] > 1000
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


def test_a_file_without_newlines_is_cut_not_buffered(tmp_path):
    path = tmp_path / "junk.log"
    path.write_bytes(b"x" * (3 * 1024 * 1024) + b" connection refused\n")
    cfg = ReviewConfig(sources=[{"name": "j", "kind": "ollama", "paths": [str(path)]}])
    w = review_window(datetime.now(UTC) + timedelta(hours=2))
    tracemalloc.start()
    scan = scan_logs(cfg, w)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert scan.bytes_read == path.stat().st_size
    assert peak < 12 * 1024 * 1024


# ---------------------------------------------------------------- coverage problems and undated logs


def test_missing_and_corrupt_logs_are_findings(tmp_path):
    bad = tmp_path / "broken.log.gz"
    data = b"".join(b"time=2026-11-25T10:00:00Z level=ERROR msg=%s\n" % os.urandom(8).hex().encode()
                    for _ in range(2000))  # fmt: skip
    full = gzip.compress(data)
    bad.write_bytes(full[: len(full) // 2])  # a truncated rotation
    cfg = ReviewConfig(sources=[
        {"name": "gone", "kind": "vllm", "paths": [str(tmp_path / "nope" / "*.log")]},
        {"name": "broken", "kind": "ollama", "paths": [str(bad)]},
    ])  # fmt: skip
    r = review_error_logs(cfg, review_window(datetime.now(UTC)))
    assert r.verdict == "warn"
    titles = [f.title for f in r.findings if f.kind == "coverage"]
    assert any("gone" in t and "no file matches" in t for t in titles)
    assert any("broken" in t and "read error" in t for t in titles)
    assert next(c for c in r.checks if c.check == "log_sources").status == "warn"


def test_undated_llamacpp_log_counts_when_written_this_week(tmp_path):
    path = tmp_path / "llama-server.log"
    lines = ["srv  log_server_r: request: POST /completion 127.0.0.1 200\n"] * 50
    lines.append("srv  log_server_r: request: POST /completion 127.0.0.1 500\n")
    lines.append("CUDA error: an illegal memory access was encountered\n")
    path.write_text("".join(lines))
    now = datetime.now(UTC)
    cfg = ReviewConfig(sources=[{"name": "llama", "kind": "llamacpp", "paths": [str(path)]}])
    scan = scan_logs(cfg, review_window(now + timedelta(hours=1)))
    assert scan.counts[("undated", "http_5xx")] == 1 and scan.counts[("undated", "cuda_error")] == 1
    assert scan.volume["llama"].undated == 51
    r = review_error_logs(cfg, review_window(now + timedelta(hours=1)))
    assert any("no dated request lines" in n for n in r.volume_notes)
    old = (now - timedelta(days=20)).timestamp()
    os.utime(path, (old, old))
    assert scan_logs(cfg, review_window(now + timedelta(hours=1))).incident_lines == 0


# ---------------------------------------------------------------- classifier, normalizer, timestamps


@pytest.mark.parametrize(
    "kind,line,status,cls",
    [
        ("vllm", "ERROR 11-26 14:02:03 [engine.py:160] torch.OutOfMemoryError: CUDA out of memory.", None, "oom"),
        ("vllm", "WARNING 11-26 14:02:43 [scheduler.py:1560] ... because there is not enough KV cache space.", None, "oom"),
        ("vllm", "ValueError: No available memory for the cache blocks. Try increasing gpu_memory_utilization", None, "oom"),
        ("llamacpp", "llama_init_from_model: failed to allocate buffer for kv cache", None, "oom"),
        ("ollama", 'level=ERROR msg="llama runner process has terminated: cudaMalloc failed: out of memory"', None, "oom"),
        ("llamacpp", "CUDA error: an illegal memory access was encountered", None, "cuda_error"),
        ("vllm", "RuntimeError: NCCL error in: ../torch/csrc/distributed/c10d/NCCLUtils.hpp:275", None, "cuda_error"),
        ("ollama", "panic: runtime error: invalid memory address or nil pointer dereference", None, "crash_restart"),
        ("ollama", "Nov 21 03:00:01 h systemd[1]: ollama.service: Main process exited, code=killed, status=9/KILL", None, "crash_restart"),
        ("ollama", "Nov 21 03:00:03 h systemd[1]: ollama.service: Scheduled restart job, restart counter is at 2.", None, "crash_restart"),
        ("vllm", "ERROR 11-21 03:00:01 [core.py:396] EngineCore encountered a fatal error.", None, "crash_restart"),
        ("llamacpp", "Segmentation fault (core dumped)", None, "crash_restart"),
        ("ollama", 'level=ERROR msg="post predict" error="dial tcp 127.0.0.1:41235: connect: connection refused"', None, "connection_refused"),
        ("jsonl", '{"ts": "2026-11-25T10:00:00Z", "status": 504, "error": "upstream timeout"}', 504, "timeout"),
        ("ollama", 'level=WARN msg="x" error="context deadline exceeded"', None, "timeout"),
        ("ollama", '[GIN] 2026/11/25 - 10:00:00 | 500 |  1.2s | 127.0.0.1 | POST "/api/chat"', 500, "http_5xx"),
        ("kernel", "Nov 27 02:14:09 h kernel: NVRM: Xid (PCI:0000:3b:00): 79, pid='<unknown>', GPU has fallen off the bus.", None, "xid"),
        ("kernel", "Nov 27 02:14:09 h kernel: Out of memory: Killed process 4321 (ollama) total-vm:123kB", None, "oom"),
        # healthy lines that mention the keywords
        ("ollama", 'level=INFO msg="server config" env="map[OLLAMA_LOAD_TIMEOUT:5m0s]"', None, None),
        ("ollama", 'level=INFO msg="inference compute" library=cuda total="79.1 GiB"', None, None),
        ("vllm", "INFO 11-21 03:00:01 [loggers.py:116] Engine 000: GPU KV cache usage: 5.2%", None, None),
        ("vllm", "INFO 11-21 03:00:01 [gpu_worker.py:227] Available KV cache memory: 58.21 GiB", None, None),
        ("vllm", "INFO 11-21 03:00:01 [async_llm.py:411] Aborted request chatcmpl-123.", None, None),
        ("vllm", "INFO 11-21 03:00:01 [launcher.py:28] timeout_keep_alive=5", None, None),
        ("vllm", 'INFO:     10.0.0.1:5000 - "POST /v1/chat/completions HTTP/1.1" 400 Bad Request', None, None),
        ("ollama", "WARN retrying a non-fatal condition", None, None),
        ("kernel", "Nov 27 02:14:09 h kernel: nvidia-modeset: Loading NVIDIA Kernel Mode Setting Driver", None, None),
        ("kernel", "Nov 27 02:14:09 h kernel: ollama invoked oom-killer: gfp_mask=0x100cca", None, None),
    ],
)  # fmt: skip
def test_classify_line(kind, line, status, cls):
    assert classify_line(line.lower().encode(), kind, status) == cls


def test_normalize_message_strips_what_varies():
    a = normalize_message('time=2026-11-23T09:08:12.000Z level=ERROR msg="failed" request_id="3f2a1b4c-1d2e-4f5a-'
                          '8b9c-0d1e2f3a4b5c" peer=10.0.0.7:5123 after 31s at 0x7f3a2b')  # fmt: skip
    b = normalize_message('time=2026-11-24T21:00:59.512Z level=ERROR msg="failed" request_id="aaaaaaaa-bbbb-4ccc-'
                          '8ddd-eeeeeeeeeeee" peer=192.168.1.20:80 after 90s at 0xdeadbeef')  # fmt: skip
    assert a == b
    assert a == 'level=ERROR msg="failed" request_id="<uuid>" peer=<ip> after <n>s at <hex>'
    assert normalize_message("ERROR 11-26 14:02:03 [engine.py:160] boom at 2026-11-26 14:02:03") == (
        "ERROR <ts> [engine.py:<n>] boom at <ts>"
    )
    assert normalize_message("Nov 21 03:00:01 host-7 kernel: [123.45] x") == normalize_message(
        "Dec  2 23:59:59 host-7 kernel: [99.1] x"
    )


def test_timestamp_formats_and_year_inference():
    from llm_upkeep.review.logscan import TS_RES

    w = review_window(datetime(2027, 1, 3, tzinfo=UTC))
    sc = LogScanner(ReviewConfig(log_timezone="Europe/Berlin"), w)

    def ts(kind: str, line: str) -> datetime:
        m = TS_RES[kind].match(line.encode())
        return datetime.fromtimestamp(sc.parse_ts(m), UTC)

    assert ts("ollama", "time=2026-12-30T10:00:00.250+02:00 level=INFO") == datetime(
        2026, 12, 30, 8, 0, 0, 250000, UTC
    )
    assert ts("ollama", "time=2026-12-30T10:00:00Z level=INFO") == datetime(2026, 12, 30, 10, tzinfo=UTC)
    assert ts("ollama", "[GIN] 2026/12/30 - 10:00:00 | 200 |") == datetime(
        2026, 12, 30, 9, tzinfo=UTC
    )  # Berlin
    assert ts("ollama", "Dec 31 23:30:00 h ollama[7]: [GIN] 2027/01/01 - 00:30:00 | 200") == datetime(
        2026, 12, 31, 22, 30, tzinfo=UTC
    )  # the journald prefix wins; Dec 31 is last year's
    assert ts("kernel", "Jan  2 10:00:00 host kernel: x") == datetime(2027, 1, 2, 9, tzinfo=UTC)
    assert ts("kernel", "2027-01-02T10:00:00.5+00:00 host kernel: x") == datetime(
        2027, 1, 2, 10, 0, 0, 500000, UTC
    )
    assert ts("vllm", "WARNING 12-31 10:00:00 [x.py:1] y") == datetime(2026, 12, 31, 9, tzinfo=UTC)
    assert ts("llamacpp", '{"timestamp":1798700000,"level":"INFO"}') == datetime.fromtimestamp(
        1798700000, UTC
    )
    assert ts("jsonl", '{"id": 1, "ts": "2026-12-30T10:00:00Z"}') == datetime(2026, 12, 30, 10, tzinfo=UTC)
    assert ts("jsonl", '{"id": 1, "time": 1798700000.5}') == datetime.fromtimestamp(1798700000.5, UTC)
    assert TS_RES["vllm"].match(b'INFO:     127.0.0.1:5 - "POST /v1 HTTP/1.1" 200 OK') is None
    assert TS_RES["llamacpp"].match(b"srv  log_server_r: request: POST /completion 127.0.0.1 200") is None


def test_bursts_and_robust_z():
    t = [0, 50, 100, 5000, 9000, 9030, 9060, 9090]
    assert find_bursts(t, 600, 3) == [(0, 100, 3), (9000, 9090, 4)]
    assert find_bursts([0, 700, 1400], 600, 3) == []
    z, med, mad = robust_z(200, [20, 22, 19, 25, 21, 18, 20])
    assert med == 20 and mad == 1 and z > 30
    # constant baseline: MAD 0 falls back to Poisson noise, so +3 is not an anomaly
    z, _, _ = robust_z(103, [100] * 10)
    assert abs(z) < 1


def test_secrets_in_log_lines_never_reach_the_report(tmp_path, monkeypatch):
    from llm_upkeep.configbase import resolve_secret

    monkeypatch.setenv("TEST_REVIEW_KEY", "sk-live-9f8e7d6c5b4a39281706")
    secret = resolve_secret("TEST_REVIEW_KEY", key="x")
    path = tmp_path / "server.log"
    t0 = WINDOW.start + timedelta(days=1)
    lines = [
        f'time={t0 + timedelta(minutes=i):%Y-%m-%dT%H:%M:%S}.000Z level=ERROR msg="upstream timed out" '
        f'auth="Bearer abcdefghijklmnop{i}" key={secret}\n'
        for i in range(12)
    ]
    path.write_text("".join(lines))
    os.utime(path, (WINDOW.end.timestamp() - 60,) * 2)
    r = review_error_logs(
        ReviewConfig(sources=[{"name": "o", "kind": "ollama", "paths": [str(path)]}]), WINDOW
    )
    (rep,) = [f for f in r.findings if f.kind == "repeated"]
    assert rep.count == 12
    dumped = r.model_dump_json() + report_of(r)
    assert secret not in dumped and "abcdefghijklmnop" not in dumped
    assert "***" in rep.evidence[0]
