"""Streaming log classifier for the weekly review: plain and .gz logs of any size in constant memory.

Speed comes from never looping over lines in Python. Each chunk (about 1 MiB) is:
- searched, lower-cased, with ``bytes.find`` for a short list of keywords; only the lines
  that contain one are classified, with a regex per class (a line gets one class);
- counted for requests with ``bytes.count`` of a per-format marker (``[GIN] `` for Ollama ...),
  and split by halves until each part lies in one hour (logs are chronological), so only the
  timestamps at split points are parsed.

Everything kept is bounded: counters per day and hour, a capped table of normalized messages,
and a few evidence lines per finding.
"""

from __future__ import annotations

import glob
import gzip
import logging
import math
import os
import re
import zlib
from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from llm_upkeep.redact import redact
from llm_upkeep.review.config import LogSource, ReviewConfig
from llm_upkeep.review.window import ReviewWindow
from llm_upkeep.review.xid import parse_xid

log = logging.getLogger(__name__)

CLASSES = ("timeout", "http_5xx", "oom", "cuda_error", "xid", "crash_restart", "connection_refused")

# ---------------------------------------------------------------- formats

# One timestamp per line, anchored at the line start so undated lines (vLLM's access lines) fail
# at once. Every format also accepts a syslog/journald prefix ("Nov 21 03:12:01 host prog[1]: ...")
# and an ISO time at the line start (rsyslog, container runtimes). Group names tell the parser.
_SYS = rb"(?P<sys>(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d:\d\d)"
_ISO = rb"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"
_START = _SYS + rb"|(?P<iso>" + _ISO + rb")"
_EPOCH = rb"(?P<epoch>\d{10}(?:\.\d+)?)"
TS_RES: dict[str, re.Pattern[bytes]] = {
    # time=2026-11-21T03:12:01.000Z level=...   and   [GIN] 2026/11/21 - 03:12:01 | 200 | ...
    "ollama": re.compile(
        rb"^(?:"
        + _START
        + rb"|time=(?P<iso2>"
        + _ISO
        + rb")|\[GIN\] (?P<gin>\d{4}/\d\d/\d\d - \d\d:\d\d:\d\d))",
        re.M,
    ),
    # INFO 11-21 03:12:01 [file.py:12] ...
    "vllm": re.compile(
        rb"^(?:" + _START + rb"|(?:DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL) (?P<vl>\d\d-\d\d \d\d:\d\d:\d\d))",
        re.M,
    ),
    # {"timestamp":1732158721,"level":"INFO",...}  (the text format has no wall-clock time)
    "llamacpp": re.compile(rb"^(?:" + _START + rb'|\{\s*"timestamp"\s*:\s*' + _EPOCH + rb")", re.M),
    # {"ts": "2026-11-21T03:12:01Z", ...}  or  {"time": 1732158721.5, ...}
    "jsonl": re.compile(
        rb"^(?:"
        + _START
        + rb'|[^\n]{0,200}?"(?:ts|time|timestamp|@timestamp)"\s*:\s*(?:"(?P<iso2>'
        + _ISO
        + rb')"|'
        + _EPOCH
        + rb"))",
        re.M,
    ),
    "kernel": re.compile(rb"^(?:" + _START + rb")", re.M),
}
_MONTHS = {m.encode(): i + 1 for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())}

# What marks one request line, per format (request volume).
DEFAULT_MARKERS: dict[str, list[bytes]] = {
    "ollama": [b"[GIN] "],
    "vllm": [b" HTTP/1.", b" HTTP/2"],  # uvicorn: ... "POST /v1/chat/completions HTTP/1.1" 200 OK
    "llamacpp": [b"log_server_r: request:", b'"msg":"request"'],
    "kernel": [],
    "jsonl": [b"\n"],
}

# HTTP status >= 500 in request lines, per format; group 1 is the status.
STATUS_RES: dict[str, list[re.Pattern[bytes]]] = {
    "ollama": [re.compile(rb"\[GIN\] [^|\n]*\|\s*(5\d\d)\s*\|")],
    "vllm": [re.compile(rb' HTTP/[\d.]+" (5\d\d)\b')],
    "llamacpp": [
        re.compile(rb'"status":\s*(5\d\d)\b'),
        re.compile(rb"log_server_r: request: [^\n]* (5\d\d)\r?$", re.M),
    ],
    "jsonl": [
        re.compile(rb'"status(?:_code)?"\s*:\s*"?(5\d\d)\b'),
        re.compile(rb'"http_status"\s*:\s*"?(5\d\d)\b'),
    ],
    "kernel": [],
}

# Lower-case keywords that make a line a candidate; the class regexes below decide.
_SERVER_KEYWORDS = [
    b"timeout", b"timed out", b"dead", b"refused", b"memory", b"oom", b"space", b"alloc", b"cuda",
    b"nccl", b"xid", b"panic", b"fault", b"core dump", b"terminate", b"exit", b"restart", b"fatal",
    b"died", b"ggml_assert", b"killed",
]  # fmt: skip
KEYWORDS: dict[str, list[bytes]] = {
    "ollama": _SERVER_KEYWORDS,
    "vllm": _SERVER_KEYWORDS,
    "llamacpp": _SERVER_KEYWORDS,
    # request records: a failure carries an error field (or a 5xx status, found separately)
    "jsonl": [b'"err', b"exception", b"timeout", b"refused"],
    "kernel": [b"xid", b"killed process", b"segfault", b"protection fault", b"kernel panic"],
}

# Healthy request lines that make up most of a server log; their content is removed before the
# keyword search (their status is checked by STATUS_RES on the original text).
BULK_RES: dict[str, re.Pattern[bytes]] = {
    "ollama": re.compile(rb"\[GIN\] [^\n]*"),
    "vllm": re.compile(rb"INFO:     [^\n]*"),  # uvicorn access and lifecycle lines
    "llamacpp": re.compile(rb"log_server_r: request: [^\n]*"),
}

_OOM = re.compile(
    rb"out of memory|outofmemory|oom-kill|oom_kill|oomkilled|not enough kv cache|kv cache space"
    rb"|no available memory for the cache blocks|than the available kv cache memory|space in the kv cache"
    rb"|failed to find a memory slot|failed to allocate|cudamalloc failed|insufficient memory"
    rb"|requires more system memory|unable to allocate"
)
_CUDA = re.compile(
    rb"cuda error|cuda_error_|cudaerror|cuda failure|cuda driver error|cublas_status_(?!success)|nccl error"
    rb"|ncclunhandledcudaerror|ncclsystemerror|illegal memory access|device-side assert|cuda exception"
    rb"|no cuda-capable device|cuda kernel errors"
)
_CRASH = re.compile(
    rb"panic:|segmentation fault|segfault|sigsegv|sigabrt|sigbus|core dumped|fatal error|enginedeaderror"
    rb"|died unexpectedly|worker died|runner process (?:has )?terminated|runner process no longer running"
    rb"|runner terminated|process has terminated|terminate called|main process exited|failed with result"
    rb"|scheduled restart job|restart counter is at|exited with (?:code|status) [1-9]|exit status [1-9]"
    rb"|ggml_assert|signal: killed|engine core encountered a fatal error|(?<!non-)\bfatal\b"
)
_REFUSED = re.compile(rb"connection refused|econnrefused|actively refused")
_TIMEOUT = re.compile(
    rb"timed out|timeout(?!s?\s*[=:]\s*\d)(?!_)|deadline exceeded|readtimeout|connecttimeout|gateway time-?out"
)
# INFO/DEBUG lines mention "timeout" in settings dumps; they are not failures.
_INFO_LEVEL = re.compile(
    rb"level=(?:info|debug|trace)\b|^(?:[a-z]{3} [ \d]\d [\d:]{8} \S+ \S+: )?(?:info|debug) \d\d-\d\d"
    rb'|"level"\s*:\s*"(?:info|debug|trace)"|^\[?(?:info|debug)\]?[: ]'
)

_KERNEL_CLASSES: list[tuple[str, re.Pattern[bytes]]] = [
    ("xid", re.compile(rb"nvrm: xid")),
    ("oom", re.compile(rb"killed process")),
    ("crash_restart", re.compile(rb"segfault at|general protection fault|kernel panic")),
]


def classify_line(low: bytes, kind: str = "ollama", status: int | None = None) -> str | None:
    """The one class of a lower-cased line (most specific cause first), or None."""
    if kind == "kernel":
        for cls, rx in _KERNEL_CLASSES:
            if rx.search(low):
                return cls
        return None
    if b"nvrm: xid" in low:
        return "xid"
    if _OOM.search(low):
        return "oom"
    if _CUDA.search(low):
        return "cuda_error"
    if _CRASH.search(low):
        return "crash_restart"
    soft_ok = not _INFO_LEVEL.search(low)
    if soft_ok and _REFUSED.search(low):
        return "connection_refused"
    if soft_ok and _TIMEOUT.search(low):
        return "timeout"
    if status is not None and status >= 500:
        return "http_5xx"
    return None


# ---------------------------------------------------------------- normalization

_NORMALIZERS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ )"), ""),  # syslog prefix + host
    (re.compile(r"\d{4}[-/]\d\d[-/]\d\d(?:[T ]| - )\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"), "<ts>"),
    (re.compile(r"\b\d\d-\d\d \d\d:\d\d:\d\d\b"), "<ts>"),
    (re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"), "<uuid>"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"), "<ip>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<hex>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}\b"), "<hex>"),
    (re.compile(r"[-+]?\d+(?:\.\d+)?"), "<n>"),
    (re.compile(r"\s+"), " "),
    (re.compile(r"^\s*(?:time=)?<ts>\s*"), ""),  # a leading time says nothing about the failure
]


def normalize_message(line: str) -> str:
    """Same failure, different numbers/ids/addresses/times -> same text."""
    s = line
    for rx, rep in _NORMALIZERS:
        s = rx.sub(rep, s)
    return s.strip()[:240]


# ---------------------------------------------------------------- results


@dataclass
class Evidence:
    source: str
    file: str
    line: int
    ts: float | None
    text: str

    def render(self) -> str:
        when = (
            "undated"
            if self.ts is None
            else datetime.fromtimestamp(self.ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
        )
        where = f"{os.path.basename(self.file)}:{self.line}" if self.line else os.path.basename(self.file)
        return f"{self.source} {where} [{when}] {self.text}"


@dataclass
class RepeatStat:
    cls: str
    message: str
    count: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    sources: set[str] = field(default_factory=set)
    samples: list[Evidence] = field(default_factory=list)


@dataclass
class XidStat:
    code: int
    device: str
    count: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    samples: list[Evidence] = field(default_factory=list)


@dataclass
class SourceVolume:
    source: str
    markers: list[bytes]
    hourly: Counter = field(default_factory=Counter)  # UTC hour index -> requests
    samples: dict[int, Evidence] = field(default_factory=dict)  # first request line of each hour
    first_ts: float | None = None
    last_ts: float | None = None
    undated: int = 0
    outside: int = 0

    def cover(self, ts: float | None) -> None:
        if ts is None:
            return
        self.first_ts = ts if self.first_ts is None else min(self.first_ts, ts)
        self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)


@dataclass
class FileStat:
    source: str
    path: str
    bytes_read: int = 0
    lines: int = 0
    compressed: bool = False
    error: str | None = None


@dataclass
class LogScan:
    window: ReviewWindow
    files: list[FileStat] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)  # (source, pattern) matching no file
    counts: Counter = field(default_factory=Counter)  # (day "YYYY-MM-DD" | "undated", class) -> lines
    class_times: dict[str, array] = field(default_factory=dict)  # class -> timestamps (capped)
    hour_samples: dict[tuple[str, int], list[Evidence]] = field(default_factory=dict)
    repeats: dict[tuple[str, str], RepeatStat] = field(default_factory=dict)
    repeats_other: int = 0
    xids: dict[tuple[int, str], XidStat] = field(default_factory=dict)
    volume: dict[str, SourceVolume] = field(default_factory=dict)
    bytes_read: int = 0
    lines: int = 0
    incident_lines: int = 0

    @property
    def total_by_class(self) -> dict[str, int]:
        out = dict.fromkeys(CLASSES, 0)
        for (_, cls), n in self.counts.items():
            out[cls] += n
        return out


MAX_TIMES_PER_CLASS = 200_000
_DIGIT_MASK = bytes.maketrans(b"0123456789", b"0000000000")
MAX_LINE_BYTES = 1 << 20  # a longer "line" is cut, so a file without newlines cannot grow memory


# ---------------------------------------------------------------- files


def find_log_files(source: LogSource, not_before: float | None = None) -> tuple[list[str], list[str]]:
    """Files of a source, oldest first (rotation order), and the patterns that matched nothing.

    A file last written before `not_before` cannot hold a line in the window and is skipped.
    """
    found: dict[str, float] = {}
    missing: list[str] = []
    for pat in source.paths:
        pat = os.path.expanduser(pat)
        hits = sorted(glob.glob(pat)) if glob.has_magic(pat) else ([pat] if os.path.exists(pat) else [])
        files = [h for h in hits if os.path.isfile(h)]
        if not files:
            missing.append(pat)
        for f in files:
            try:
                mtime = os.stat(f).st_mtime
            except OSError:
                mtime = 0.0
            found[os.path.realpath(f)] = mtime
    keep = [(m, p) for p, m in found.items() if not_before is None or m >= not_before]
    return [p for _, p in sorted(keep)], missing


def _open(path: str):
    f = open(path, "rb")
    magic = f.read(2)
    f.seek(0)
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f, mode="rb"), True
    return f, False


# ---------------------------------------------------------------- the scanner


class LogScanner:
    """Feeds files through the classifier; call scan_source per source, then .result."""

    def __init__(self, cfg: ReviewConfig, window: ReviewWindow):
        self.cfg = cfg
        self.window = window
        self.scan = LogScan(window=window)
        self.tz = ZoneInfo(cfg.log_timezone)
        ref = window.end.astimezone(self.tz)
        self._ref_year = ref.year
        self._ref_limit = ref.replace(tzinfo=None) + timedelta(days=2)
        self._week = (window.start_s, window.end_s)
        self._hours = (int(window.baseline_start_s // 3600), int(window.end_s // 3600))
        self._ev_n = cfg.evidence_lines
        self._ts = TS_RES["ollama"]
        self._days: dict[int, str] = {}
        self._norm_cache: dict[bytes, str] = {}

    # -------------------------------------------------------- timestamps

    def _naive(self, dt: datetime) -> float:
        return dt.replace(tzinfo=self.tz).timestamp()

    def _yearless(self, month: int, day: int, hh: int, mm: int, ss: int) -> float:
        dt = datetime(self._ref_year, month, day, hh, mm, ss)
        if dt > self._ref_limit:
            dt = dt.replace(year=self._ref_year - 1)
        return self._naive(dt)

    def parse_ts(self, m: re.Match[bytes]) -> float | None:
        kind = m.lastgroup
        s = m.group(kind)
        try:
            if kind in ("iso", "iso2"):
                dt = datetime(
                    int(s[0:4]), int(s[5:7]), int(s[8:10]), int(s[11:13]), int(s[14:16]), int(s[17:19])
                )
                rest = s[19:]
                frac = 0.0
                if rest[:1] in (b".", b","):
                    j = 1
                    while j < len(rest) and 48 <= rest[j] <= 57:
                        j += 1
                    frac = float(b"0." + rest[1:j]) if j > 1 else 0.0
                    rest = rest[j:]
                if not rest:
                    return self._naive(dt) + frac
                if rest == b"Z":
                    return dt.replace(tzinfo=UTC).timestamp() + frac
                sign = -1 if rest[:1] == b"-" else 1
                digits = rest[1:].replace(b":", b"")
                off = sign * (int(digits[:2]) * 3600 + int(digits[2:4]) * 60)
                return dt.replace(tzinfo=UTC).timestamp() - off + frac
            if kind == "gin":
                return self._naive(
                    datetime(
                        int(s[0:4]), int(s[5:7]), int(s[8:10]), int(s[13:15]), int(s[16:18]), int(s[19:21])
                    )
                )
            if kind == "sys":
                return self._yearless(_MONTHS[s[:3]], int(s[4:6]), int(s[7:9]), int(s[10:12]), int(s[13:15]))
            if kind == "vl":
                return self._yearless(int(s[0:2]), int(s[3:5]), int(s[6:8]), int(s[9:11]), int(s[12:14]))
            if kind == "epoch":
                v = float(s)
                return v if math.isfinite(v) else None
        except (ValueError, KeyError, OverflowError):
            return None
        return None

    def _line_ts(self, buf: bytes, s: int, e: int) -> float | None:
        m = self._ts.match(buf, s, e)
        return self.parse_ts(m) if m else None

    def _first_ts(self, buf: bytes, a: int, b: int) -> float | None:
        pos = a
        while pos < b:
            m = self._ts.search(buf, pos, b)
            if not m:
                return None
            ts = self.parse_ts(m)
            if ts is not None:
                return ts
            nl = buf.find(b"\n", m.end(), b)
            if nl == -1:
                return None
            pos = nl + 1
        return None

    def _last_ts(self, buf: bytes, a: int, b: int) -> tuple[float, int] | None:
        """Timestamp (and line start) of the last dated line in buf[a:b], searching backwards.

        Line by line first (the last line is usually dated), then in growing windows, where
        the regex runs in C over many undated lines (e.g. vLLM's access lines).
        """
        e = b
        for _ in range(16):
            if e <= a:
                return None
            s = buf.rfind(b"\n", a, e - 1) + 1
            s = max(s, a)
            m = self._ts.match(buf, s, e)
            if m:
                ts = self.parse_ts(m)
                if ts is not None:
                    return ts, s
            e = s
        hi, w = e, 8192
        while hi > a:
            lo = max(a, hi - w)
            if lo > a:
                nl = buf.find(b"\n", lo, hi)
                if nl == -1 or nl + 1 >= hi:
                    w *= 4
                    continue
                lo = nl + 1
            for m in reversed(list(self._ts.finditer(buf, lo, hi))):
                ts = self.parse_ts(m)
                if ts is not None:
                    return ts, m.start()
            hi = lo
            w *= 4
        return None

    # -------------------------------------------------------- request volume

    def _add_volume(
        self, vol: SourceVolume, hour: int, n: int, buf: bytes, a: int, b: int, src: str, path: str
    ):
        if not (self._hours[0] <= hour < self._hours[1]):
            vol.outside += n
            return
        vol.hourly[hour] += n
        if hour not in vol.samples:
            pos = min((p for p in (buf.find(m, a, b) for m in vol.markers) if p >= 0), default=-1)
            if pos >= 0:
                nl = buf.rfind(b"\n", a, pos) if vol.markers != [b"\n"] else -1
                s = a if nl == -1 else nl + 1
                e = buf.find(b"\n", s, b)
                text = buf[s : (e if e != -1 else b)][:400].decode("utf-8", "replace")
                vol.samples[hour] = Evidence(src, path, 0, hour * 3600.0, redact(text))

    def _count(self, vol: SourceVolume, buf: bytes, a: int, b: int) -> int:
        n = 0
        for m in vol.markers:
            n += buf.count(m, a, b)
        return n

    def _volume(self, vol, buf, a, b, start, last, src, path, n: int | None = None) -> None:
        """Give the request markers in buf[a:b] to hours; `start` is the time in effect at a.

        A part that spans hours is halved until each half lies in one hour; only the left half
        is counted again (the right one is the rest), so a boundary costs about one extra pass.
        """
        if n is None:
            n = self._count(vol, buf, a, b)
        if not n:
            return
        if start is None:
            start = self._first_ts(buf, a, b)
            if start is None:
                vol.undated += n
                return
        h0 = int(start // 3600)
        h1 = int(last[0] // 3600) if last is not None else h0
        if h0 == h1:
            self._add_volume(vol, h0, n, buf, a, b, src, path)
            return
        mid = (a + b) // 2
        m = buf.rfind(b"\n", a, mid) + 1
        if m <= a:
            nl = buf.find(b"\n", mid, b)
            m = nl + 1 if nl != -1 else b
        if m >= b:  # one line: it has its own time (last) or inherits start
            self._add_volume(vol, h1, n, buf, a, b, src, path)
            return
        left_last = self._last_ts(buf, a, m)
        right_last = last if last is not None and last[1] >= m else None
        n_left = self._count(vol, buf, a, m)
        self._volume(vol, buf, a, m, start, left_last, src, path, n_left)
        self._volume(vol, buf, m, b, left_last[0] if left_last else start, right_last, src, path, n - n_left)

    # -------------------------------------------------------- incidents

    def _record(self, src: str, path: str, line_no: int, ts: float | None, cls: str, raw: bytes) -> None:
        """Count one failure line. Redaction and evidence only for what is kept (a few lines per
        finding); the grouping key comes from a cache keyed by the line with its digits masked."""
        sc = self.scan
        sc.incident_lines += 1
        if ts is None:
            day = "undated"
        else:
            dn = int(ts // 86400)
            day = self._days.get(dn)
            if day is None:
                day = self._days[dn] = datetime.fromtimestamp(dn * 86400, UTC).strftime("%Y-%m-%d")
        sc.counts[(day, cls)] += 1
        raw = raw[:600]
        made: list[Evidence] = []

        def keep(lst: list[Evidence]) -> None:
            if len(lst) < self._ev_n:
                if not made:
                    text = redact(raw.decode("utf-8", "replace").rstrip("\r"))[:400]
                    made.append(Evidence(src, path, line_no, ts, text))
                lst.append(made[0])

        if ts is not None:
            times = sc.class_times.setdefault(cls, array("d"))
            if len(times) < MAX_TIMES_PER_CLASS:
                times.append(ts)
            keep(sc.hour_samples.setdefault((cls, int(ts // 3600)), []))
        if cls == "xid":
            parsed = parse_xid(raw)
            if parsed:
                code, dev = parsed
                st = sc.xids.get((code, dev))
                if st is None:
                    st = sc.xids[(code, dev)] = XidStat(code, dev)
                st.count += 1
                if ts is not None:
                    st.first_ts = ts if st.first_ts is None else min(st.first_ts, ts)
                    st.last_ts = ts if st.last_ts is None else max(st.last_ts, ts)
                keep(st.samples)
        # normalize_message depends only on where digits are, not on their values: cache by the mask
        masked = raw.translate(_DIGIT_MASK)
        norm = self._norm_cache.get(masked)
        if norm is None:
            if len(self._norm_cache) > 20_000:
                self._norm_cache.clear()
            norm = self._norm_cache[masked] = normalize_message(raw.decode("utf-8", "replace"))
        key = (cls, norm)
        rep = sc.repeats.get(key)
        if rep is None:
            if len(sc.repeats) >= self.cfg.max_distinct_messages:
                sc.repeats_other += 1
                return
            # the key never leaves the process; what is shown is normalized after redaction
            shown = normalize_message(redact(raw.decode("utf-8", "replace")))
            rep = sc.repeats[key] = RepeatStat(cls, shown)
        rep.count += 1
        rep.sources.add(src)
        if ts is not None:
            rep.first_ts = ts if rep.first_ts is None else min(rep.first_ts, ts)
            rep.last_ts = ts if rep.last_ts is None else max(rep.last_ts, ts)
        keep(rep.samples)

    def _candidates(self, kind: str, buf: bytes) -> dict[int, int | None]:
        """Line starts worth classifying: keyword lines (bulk request lines removed first) and 5xx lines."""
        bulk = BULK_RES.get(kind)
        text = bulk.sub(b"", buf) if bulk is not None else buf
        low = text.lower()
        found: set[int] = set()
        for kw in KEYWORDS[kind]:
            i = low.find(kw)
            while i != -1:
                found.add(low.rfind(b"\n", 0, i) + 1)
                e = low.find(b"\n", i)
                if e == -1:
                    break
                i = low.find(kw, e)
        starts: dict[int, int | None] = {}
        if text is buf:
            starts = dict.fromkeys(found)
        else:  # bulk lines were emptied, the others kept whole and in order: find each in the original
            pos, n = 0, len(buf)
            for s in sorted(found):
                e = text.find(b"\n", s)
                line = text[s : (len(text) if e == -1 else e)]
                if not line:
                    continue
                o = buf.find(line, pos)
                while o != -1 and not (
                    (o == 0 or buf[o - 1] == 10) and (o + len(line) == n or buf[o + len(line)] in b"\r\n")
                ):
                    o = buf.find(line, o + 1)
                if o != -1:
                    starts[o] = None
                    pos = o + len(line)
        for rx in STATUS_RES[kind]:
            for m in rx.finditer(buf):
                starts[buf.rfind(b"\n", 0, m.start()) + 1] = int(m.group(1))
        return starts

    def _incidents(self, source: LogSource, path: str, buf: bytes, start_ts, line0: int, undated_ok: bool):
        starts = self._candidates(source.kind, buf)
        if not starts:
            return
        prev, line_no = 0, line0
        wk0, wk1 = self._week
        known_pos, known_ts = 0, start_ts  # the latest time established before known_pos
        for s in sorted(starts):
            line_no += buf.count(b"\n", prev, s)
            prev = s
            e = buf.find(b"\n", s)
            e = len(buf) if e == -1 else e
            cls = classify_line(buf[s:e].lower(), source.kind, starts[s])
            if cls is None:
                continue
            ts = self._line_ts(buf, s, e)
            if ts is None:
                before = self._last_ts(buf, known_pos, s) if s > known_pos else None
                if before is not None:
                    known_ts = before[0]
                known_pos = s
                ts = known_ts
            else:
                known_pos, known_ts = e, ts
            if ts is None:
                if not undated_ok:
                    continue
            elif not (wk0 <= ts < wk1):
                continue
            self._record(source.name, path, line_no + 1, ts, cls, buf[s:e])

    # -------------------------------------------------------- driver

    def scan_source(self, source: LogSource) -> None:
        if source.kind == "journal":  # read through journalctl (llm_upkeep/review/journal_source.py)
            from llm_upkeep.review.journal_source import scan_journal

            return scan_journal(self, source)
        files, missing = find_log_files(source, not_before=self.window.baseline_start_s)
        self.scan.missing += [(source.name, p) for p in missing]
        markers = (
            [m.encode() for m in source.request_markers]
            if source.request_markers is not None
            else DEFAULT_MARKERS[source.kind]
        )
        vol = None
        if markers:
            vol = self.scan.volume.setdefault(source.name, SourceVolume(source.name, markers))
        for path in files:
            self.scan_file(source, path, vol)

    def scan_file(self, source: LogSource, path: str, vol: SourceVolume | None) -> FileStat:
        stat = FileStat(source.name, path)
        self._ts = TS_RES[source.kind]
        self.scan.files.append(stat)
        try:
            undated_ok = os.stat(path).st_mtime >= self.window.start_s
            f, stat.compressed = _open(path)
        except OSError as e:
            stat.error = f"cannot open: {e.strerror or e}"
            return stat
        chunk = self.cfg.chunk_bytes
        carry: float | None = None
        rem = b""
        wk0, wk1 = self._week
        with f:
            while True:
                try:
                    data = f.read(chunk)
                except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as e:
                    stat.error = f"read error after {stat.bytes_read} bytes: {e}"
                    data = b""
                stat.bytes_read += len(data)
                if data:
                    buf = rem + data
                    cut = buf.rfind(b"\n") + 1
                    if cut == 0:
                        if len(buf) < MAX_LINE_BYTES:
                            rem = buf
                            continue
                        cut = len(buf)
                    rem, buf = buf[cut:], buf[:cut]
                else:
                    buf, rem = rem, b""
                    if not buf:
                        break
                n = len(buf)
                last = self._last_ts(buf, 0, n)
                start = carry
                if start is None and last is not None:
                    start = self._first_ts(buf, 0, n)
                if vol is not None:
                    vol.cover(start)
                    vol.cover(last[0] if last else None)
                    self._volume(vol, buf, 0, n, start, last, source.name, path)
                lo = start
                hi = last[0] if last else start
                if (hi is None and undated_ok) or (hi is not None and hi >= wk0 and (lo is None or lo < wk1)):
                    self._incidents(source, path, buf, start, stat.lines, undated_ok)
                if last is not None:
                    carry = last[0]
                stat.lines += buf.count(b"\n")
                if not data:
                    break
        self.scan.bytes_read += stat.bytes_read
        self.scan.lines += stat.lines
        return stat

    @property
    def result(self) -> LogScan:
        return self.scan


def scan_logs(cfg: ReviewConfig, window: ReviewWindow) -> LogScan:
    """Every configured source, streamed once."""
    scanner = LogScanner(cfg, window)
    for src in cfg.sources:
        scanner.scan_source(src)
    return scanner.result
