"""Request logs: JSONL (one request a line, as LLM gateways and proxies write them) and the nginx
combined format. Read for the audit (unauthorized use) and for the cost review (tokens served).
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import ipaddress
import json
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from llm_upkeep.redact import redact
from llm_upkeep.security.config import AccessLogSource, SecurityConfig
from llm_upkeep.security.findings import Finding

TS_FIELDS = ("ts", "time", "timestamp", "@timestamp", "date", "created_at", "start_time")
CLIENT_FIELDS = (
    "client",
    "client_ip",
    "remote_addr",
    "ip",
    "src_ip",
    "client_addr",
    "remote_ip",
    "x_forwarded_for",
)
STATUS_FIELDS = ("status", "status_code", "http_status", "response_status", "code")
KEY_FIELDS = ("api_key_id", "key_id", "api_key_hash", "api_key_alias", "key_alias", "api_key", "key", "user")
PATH_FIELDS = ("path", "url", "uri", "endpoint", "request_path")
PROMPT_FIELDS = ("prompt_tokens", "prompt_eval_count", "input_tokens")
OUTPUT_FIELDS = ("completion_tokens", "eval_count", "output_tokens", "generation_tokens")

NGINX_COMBINED = re.compile(
    r'^(?P<client>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\S+)'
    r'(?: "(?P<referer>[^"]*)" "(?P<agent>[^"]*)")?'
)


@dataclass
class RequestRecord:
    ts: datetime | None
    client: str | None
    status: int | None
    key: str | None  # as logged: an id, alias, hash, or (badly) the key itself
    path: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None


@dataclass
class LogRead:
    source: str
    records: list[RequestRecord] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    bad_lines: int = 0
    has_key_field: bool = False
    notes: list[str] = field(default_factory=list)


def parse_ts(v) -> datetime | None:
    """ISO 8601 strings, nginx time_local, or epoch seconds/milliseconds -> aware UTC datetime."""
    if v is None:
        return None
    if isinstance(v, int | float) and not isinstance(v, bool):
        x = float(v)
        if x > 1e14:
            x /= 1e6  # microseconds
        elif x > 1e11:
            x /= 1e3  # milliseconds
        return datetime.fromtimestamp(x, UTC)
    s = str(v).strip()
    for fmt in ("%d/%b/%Y:%H:%M:%S %z",):
        try:
            return datetime.strptime(s, fmt).astimezone(UTC)
        except ValueError:
            pass
    try:
        d = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (d if d.tzinfo else d.replace(tzinfo=UTC)).astimezone(UTC)


def _get(d: dict, names: tuple[str, ...], override: str | None):
    if override:
        cur = d
        for part in override.split("."):
            cur = cur.get(part) if isinstance(cur, dict) else None
        return cur, override in d or cur is not None
    for n in names:
        if n in d:
            return d[n], True
    return None, False


def _int(v) -> int | None:
    try:
        return int(v) if v is not None and not isinstance(v, bool) else None
    except (TypeError, ValueError):
        return None


def _tokens(d: dict) -> tuple[int | None, int | None]:
    usage = d.get("usage") if isinstance(d.get("usage"), dict) else {}
    resp = d.get("response") if isinstance(d.get("response"), dict) else {}
    p = next((_int(src[f]) for src in (d, usage, resp) for f in PROMPT_FIELDS if f in src), None)
    o = next((_int(src[f]) for src in (d, usage, resp) for f in OUTPUT_FIELDS if f in src), None)
    return p, o


def _open(path: str):
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def log_files(pattern: str) -> list[str]:
    pat = os.path.expanduser(pattern)
    if glob.has_magic(pat):
        return sorted(p for p in glob.glob(pat) if os.path.isfile(p))
    return [pat] if os.path.isfile(pat) else []


def read_request_log(src: AccessLogSource, since: datetime | None = None,
                     until: datetime | None = None) -> LogRead:  # fmt: skip
    """Every request record of one configured log (all files its glob matches), within [since, until)."""
    out = LogRead(source=src.path)
    out.files = log_files(src.path)
    if not out.files:
        out.notes.append(f"{src.path}: no such log file")
        return out
    no_ts = 0
    for path in out.files:
        try:
            with _open(path) as f:
                for line in f:
                    line = line.strip()
                    if not line:
                        continue
                    rec = _parse_line(line, src, out)
                    if rec is None:
                        out.bad_lines += 1
                        continue
                    if rec.ts is None:
                        no_ts += 1
                        continue
                    if (since and rec.ts < since) or (until and rec.ts >= until):
                        continue
                    out.records.append(rec)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            out.notes.append(f"{path}: cannot read: {redact(exc)}")
    if out.bad_lines:
        out.notes.append(f"{src.path}: {out.bad_lines} line(s) not in {src.format} format")
    if no_ts:
        out.notes.append(f"{src.path}: {no_ts} record(s) without a time, ignored")
    return out


def _parse_line(line: str, src: AccessLogSource, out: LogRead) -> RequestRecord | None:
    if src.format == "nginx":
        m = NGINX_COMBINED.match(line)
        if not m:
            return None
        req = m.group("request").split()
        user = m.group("user")
        if user != "-":
            out.has_key_field = True
        return RequestRecord(
            ts=parse_ts(m.group("time")), client=m.group("client"), status=int(m.group("status")),
            key=None if user == "-" else user, path=req[1] if len(req) > 1 else None,
        )  # fmt: skip
    try:
        d = json.loads(line)
    except ValueError:
        return None
    if not isinstance(d, dict):
        return None
    ts, _ = _get(d, TS_FIELDS, src.ts_field)
    client, _ = _get(d, CLIENT_FIELDS, src.client_field)
    status, _ = _get(d, STATUS_FIELDS, src.status_field)
    key, has_key = _get(d, KEY_FIELDS, src.key_field)
    path, _ = _get(d, PATH_FIELDS, None)
    if has_key:
        out.has_key_field = True
    if isinstance(client, str) and "," in client:
        client = client.split(",")[0].strip()  # X-Forwarded-For: the original client comes first
    p, o = _tokens(d)
    model = d.get("model") if isinstance(d.get("model"), str) else None
    return RequestRecord(
        ts=parse_ts(ts), client=str(client) if client is not None else None, status=_int(status),
        key=str(key) if key not in (None, "", "-") else None, path=str(path) if path else None,
        model=model, prompt_tokens=p, output_tokens=o,
    )  # fmt: skip


# ---------------------------------------------------------------- analysis


def _networks(cidrs: list[str]) -> list[ipaddress._BaseNetwork]:
    return [ipaddress.ip_network(c, strict=False) for c in cidrs]


def in_networks(addr: str | None, nets) -> bool | None:
    """True/False; None when the address is not an IP (e.g. '-' or a hostname)."""
    if not addr:
        return None
    try:
        ip = ipaddress.ip_address(addr.strip("[]").split("%")[0])
    except ValueError:
        return None
    mapped = getattr(ip, "ipv4_mapped", None)
    ip = mapped or ip
    return any(ip.version == n.version and ip in n for n in nets)


def fingerprint(value: str) -> str:
    """How an unknown key is shown in evidence: a hash prefix, never the value."""
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:12]


def known_key_matcher(key_ids: list[str], raw_keys: list[str]):
    ids = set(key_ids)
    hashes = {hashlib.sha256(k.encode()).hexdigest(): k for k in raw_keys}

    def known(v: str) -> bool:
        if v in ids or v in raw_keys:
            return True
        low = v.lower().removeprefix("sha256:")
        if len(low) >= 12 and any(h.startswith(low) for h in hashes):
            return True
        return any(len(v) >= 8 and k[:8] == v for k in raw_keys)

    return known


def max_in_window(times: list[datetime], window_s: float) -> tuple[int, datetime | None, datetime | None]:
    """Most events inside any window of window_s seconds (two pointers over sorted times)."""
    times = sorted(times)
    best, lo, span = 0, 0, (None, None)
    for hi, t in enumerate(times):
        while (t - times[lo]).total_seconds() > window_s:
            lo += 1
        if hi - lo + 1 > best:
            best, span = hi - lo + 1, (times[lo], t)
    return best, span[0], span[1]


def _iso(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ") if t else "?"


def analyze_log(read: LogRead, cfg: SecurityConfig, raw_keys: list[str]) -> list[Finding]:
    """Unauthorized-use findings for one log: auth-failure bursts, foreign clients, keyless or unknown-key
    requests that were served, and unusual off-hours volume."""
    recs = read.records
    if not recs:
        return []
    src = read.source
    nets = _networks(cfg.allowed_networks)
    findings: list[Finding] = []

    # 401/403 bursts per client
    fails: dict[str, list[datetime]] = defaultdict(list)
    for r in recs:
        if r.status in (401, 403):
            fails[r.client or "?"].append(r.ts)
    bursts = []
    for client, times in fails.items():
        n, a, b = max_in_window(times, cfg.auth_failure_window_s)
        if n >= cfg.auth_failure_burst:
            inside = in_networks(client, nets) if nets else None
            bursts.append((n, client, a, b, inside, len(times)))
    if bursts:
        bursts.sort(reverse=True, key=lambda x: x[0])
        foreign = any(inside is False or (nets and inside is None) for *_, inside, _t in bursts)
        ev = []
        for n, client, a, b, inside, total in bursts[:10]:
            where = ("outside the allow-list" if inside is False else "inside the allow-list" if inside
                     else "no allow-list configured" if not nets else "not an IP address")  # fmt: skip
            ev.append(f"{client} ({where}): {n} answers 401/403 within {cfg.auth_failure_window_s:g} s "
                      f"({_iso(a)} .. {_iso(b)}), {total} in the period")  # fmt: skip
        findings.append(Finding(
            id=f"access.auth-burst:{src}", category="access", severity="high" if foreign else "medium",
            title=f"{len(bursts)} client(s) hit the API with bursts of failed authentication ({src})",
            target=src, evidence=ev,
            fix="Someone is guessing keys or using a revoked one. Block the addresses (firewall or proxy), "
            "rate-limit failed authentication (e.g. fail2ban on the proxy log), and rotate keys if any "
            "request from them succeeded.",
        ))  # fmt: skip

    # clients outside the allow-list
    if nets:
        served: Counter[str] = Counter()
        refused: Counter[str] = Counter()
        for r in recs:
            if in_networks(r.client, nets) is False:
                (served if r.status is not None and 200 <= r.status < 300 else refused)[r.client] += 1
        if served:
            ev = [f"{c}: {n} request(s) answered 2xx" for c, n in served.most_common(10)]
            findings.append(Finding(
                id=f"access.foreign-served:{src}", category="access", severity="high",
                title=f"{sum(served.values())} request(s) from {len(served)} address(es) outside the "
                f"allow-list were served ({src})",
                target=src, evidence=ev + [f"allow-list: {', '.join(cfg.allowed_networks)}"],
                fix="Restrict the port to the allowed networks in the firewall or proxy, and find out who "
                "these clients are; rotate keys they may hold.",
            ))  # fmt: skip
        elif refused:
            ev = [f"{c}: {n} request(s), none served" for c, n in refused.most_common(10)]
            findings.append(Finding(
                id=f"access.foreign-refused:{src}", category="access", severity="low",
                title=f"{len(refused)} address(es) outside the allow-list reached the server but were refused",
                target=src, evidence=ev,
                fix="The network path is open to them: restrict the port in the firewall or proxy.",
            ))  # fmt: skip

    # served without a key / with an unknown key
    ok = [r for r in recs if r.status is not None and 200 <= r.status < 300]
    if read.has_key_field and ok:
        keyless = [r for r in ok if not r.key]
        if keyless:
            by_client = Counter(r.client or "?" for r in keyless)
            findings.append(Finding(
                id=f"access.no-key-served:{src}", category="access", severity="high",
                title=f"{len(keyless)} request(s) were served without an API key ({src})",
                target=src,
                evidence=[f"{c}: {n}" for c, n in by_client.most_common(10)]
                + [f"first {_iso(min(r.ts for r in keyless))}, last {_iso(max(r.ts for r in keyless))}"],
                fix="Make the server or proxy require a key on every inference route.",
            ))  # fmt: skip
        if cfg.known_key_ids or raw_keys:
            known = known_key_matcher(cfg.known_key_ids, raw_keys)
            unknown = [r for r in ok if r.key and not known(r.key)]
            if unknown:
                by_key = Counter(fingerprint(r.key) for r in unknown)
                findings.append(Finding(
                    id=f"access.unknown-key-served:{src}", category="access", severity="high",
                    title=f"{len(unknown)} request(s) were served with {len(by_key)} API key(s) not in the "
                    f"known list ({src})",
                    target=src,
                    evidence=[f"key {k}: {n} request(s)" for k, n in by_key.most_common(10)]
                    + ["keys shown as a sha256 prefix of the logged value"],
                    fix="Revoke keys nobody owns; add legitimate ones to security.known_key_ids.",
                ))  # fmt: skip

    # off-hours volume
    tz = ZoneInfo(cfg.business_timezone)
    start, end = cfg.business_hours
    days = set(cfg.business_days)
    off = [
        r
        for r in recs
        if not (r.ts.astimezone(tz).weekday() in days and start <= r.ts.astimezone(tz).hour < end)
    ]
    frac = len(off) / len(recs)
    if len(off) >= cfg.off_hours_min_requests and frac > cfg.off_hours_max_fraction:
        by_client = Counter(r.client or "?" for r in off)
        findings.append(Finding(
            id=f"access.off-hours:{src}", category="access", severity="medium",
            title=f"{len(off)} of {len(recs)} requests ({frac:.0%}) came outside working hours ({src})",
            target=src,
            evidence=[f"working hours {start:02d}-{end:02d} on weekdays {sorted(days)} ({cfg.business_timezone})"]
            + [f"{c}: {n} off-hours request(s)" for c, n in by_client.most_common(5)],
            fix="Check that the off-hours clients are known batch jobs; otherwise treat them as unauthorized use "
            "(rotate keys, restrict access).",
        ))  # fmt: skip
    return findings


def audit_access_logs(cfg: SecurityConfig, now: datetime | None = None) -> tuple[list[Finding], list[str]]:
    from llm_upkeep.configbase import resolve_secret

    now = now or datetime.now(UTC)
    since = now - timedelta(days=cfg.lookback_days)
    raw_keys = [k for env in cfg.known_api_keys_env
                if (k := resolve_secret(env, key="security.known_api_keys_env", required=False))]  # fmt: skip
    findings: list[Finding] = []
    notes: list[str] = []
    for src in cfg.access_logs:
        read = read_request_log(src, since, now)
        notes += read.notes
        notes.append(
            f"{src.path}: {len(read.records)} request(s) since {_iso(since)} in {len(read.files)} file(s)"
        )
        if read.records and not read.has_key_field:
            notes.append(f"{src.path}: no API key identity in the log; key checks skipped")
        findings += analyze_log(read, cfg, raw_keys)
    return findings, notes
