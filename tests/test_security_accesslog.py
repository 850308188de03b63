"""Unauthorized use in real log files: nginx combined and JSONL request logs."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

from llm_upkeep.security.accesslog import (
    audit_access_logs,
    fingerprint,
    max_in_window,
    parse_ts,
    read_request_log,
)
from llm_upkeep.security.config import AccessLogSource, SecurityConfig

NOW = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)  # a Friday
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # Tuesday, working hours


def nginx_line(ip, t, status, path="/v1/chat/completions", user="-"):
    return (f'{ip} - {user} [{t.strftime("%d/%b/%Y:%H:%M:%S +0000")}] "POST {path} HTTP/1.1" {status} 512 '
            f'"-" "python-httpx/0.28.1"')  # fmt: skip


def cfg(tmp_path, logs, **kw):
    base = dict(
        access_logs=logs, allowed_networks=["10.20.0.0/16", "127.0.0.0/8"], known_key_ids=["team-a", "team-b"]
    )
    return SecurityConfig(**{**base, **kw})


def clean_nginx(tmp_path):
    lines = [nginx_line(f"10.20.0.{i % 5 + 1}", T0 + timedelta(minutes=i), 200) for i in range(300)]
    lines += [
        nginx_line("10.20.0.9", T0 + timedelta(hours=2, seconds=i), 401) for i in range(3)
    ]  # a typo, not a burst
    p = tmp_path / "access.log"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_burst_of_401_from_unknown_address_is_a_finding(tmp_path):
    p = clean_nginx(tmp_path)
    attack = [nginx_line("203.0.113.66", T0 + timedelta(hours=3, seconds=2 * i), 401) for i in range(40)]
    with open(p, "a") as f:
        f.write("\n".join(attack) + "\n")
    findings, notes = audit_access_logs(cfg(tmp_path, [AccessLogSource(path=str(p), format="nginx")]), NOW)
    by_id = {f.id.split(":")[0]: f for f in findings}
    burst = by_id["access.auth-burst"]
    assert burst.severity == "high"
    assert burst.evidence[0].startswith(
        "203.0.113.66 (outside the allow-list): 40 answers 401/403 within 300 s"
    )
    assert "2026-11-24T13:00:00Z" in burst.evidence[0]
    assert "access.foreign-refused" in by_id and by_id["access.foreign-refused"].severity == "low"
    assert not any(f.id.startswith("access.foreign-served") for f in findings)


def test_clean_log_gives_no_findings(tmp_path):
    p = clean_nginx(tmp_path)
    findings, notes = audit_access_logs(cfg(tmp_path, [AccessLogSource(path=str(p), format="nginx")]), NOW)
    assert findings == []
    assert any("303 request(s)" in n for n in notes)
    assert any("no API key identity" in n for n in notes)


def test_jsonl_keyless_unknown_key_and_foreign_clients_served(tmp_path):
    leaked = "sk-leaked-abcdefghijklmnop"
    recs = [{"ts": (T0 + timedelta(minutes=i)).isoformat(), "client": "10.20.1.1", "status": 200,
             "api_key_id": "team-a", "path": "/v1/chat/completions"} for i in range(50)]  # fmt: skip
    recs += [{"ts": (T0 + timedelta(hours=1, minutes=i)).isoformat(), "client": "10.20.1.2", "status": 200,
              "api_key_id": None} for i in range(3)]  # fmt: skip
    recs += [{"ts": (T0 + timedelta(hours=2, minutes=i)).isoformat(), "client": "198.51.100.7", "status": 200,
              "api_key_id": leaked} for i in range(4)]  # fmt: skip
    p = tmp_path / "req.jsonl.gz"
    with gzip.open(p, "wt") as f:
        f.write("\n".join(json.dumps(r) for r in recs) + "\nnot json\n")
    findings, notes = audit_access_logs(cfg(tmp_path, [AccessLogSource(path=str(p), format="jsonl")]), NOW)
    by_id = {f.id.split(":")[0]: f for f in findings}
    assert by_id["access.no-key-served"].evidence[0] == "10.20.1.2: 3"
    unk = by_id["access.unknown-key-served"]
    assert unk.evidence[0] == f"key {fingerprint(leaked)}: 4 request(s)"
    assert leaked not in json.dumps([f.public() for f in findings])
    assert by_id["access.foreign-served"].evidence[0] == "198.51.100.7: 4 request(s) answered 2xx"
    assert any("1 line(s) not in jsonl format" in n for n in notes)


def test_known_key_by_env_value_hash_or_prefix(tmp_path, monkeypatch):
    import hashlib

    key = "sk-team-c-0123456789abcdef"
    monkeypatch.setenv("TEAM_C_KEY", key)
    forms = [key, hashlib.sha256(key.encode()).hexdigest()[:16], key[:8]]
    recs = [{"ts": (T0 + timedelta(minutes=i)).isoformat(), "client": "10.20.1.1", "status": 200, "key": k}
            for i, k in enumerate(forms)]  # fmt: skip
    p = tmp_path / "r.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in recs))
    c = cfg(tmp_path, [AccessLogSource(path=str(p), format="jsonl")], known_api_keys_env=["TEAM_C_KEY"])
    assert audit_access_logs(c, NOW)[0] == []


def test_off_hours_volume(tmp_path):
    night = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
    recs = [{"ts": (night + timedelta(seconds=20 * i)).isoformat(), "client": "10.20.1.1", "status": 200,
             "user": "team-b"} for i in range(300)]  # fmt: skip
    recs += [{"ts": (T0 + timedelta(seconds=20 * i)).isoformat(), "client": "10.20.1.1", "status": 200,
              "user": "team-b"} for i in range(100)]  # fmt: skip
    p = tmp_path / "r.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in recs))
    findings, _ = audit_access_logs(cfg(tmp_path, [AccessLogSource(path=str(p), format="jsonl")]), NOW)
    assert [f.id.split(":")[0] for f in findings] == ["access.off-hours"]
    assert findings[0].title.startswith("300 of 400 requests (75%)")
    # In Tokyo those nights are working hours.
    c = cfg(tmp_path, [AccessLogSource(path=str(p), format="jsonl")], business_timezone="Asia/Tokyo")
    assert audit_access_logs(c, NOW)[0] == []


def test_lookback_window_and_custom_fields(tmp_path):
    old = NOW - timedelta(days=40)
    recs = [
        {"when": (old + timedelta(seconds=i)).timestamp(), "addr": "203.0.113.5", "code": 401}
        for i in range(50)
    ]
    p = tmp_path / "r.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in recs))
    src = AccessLogSource(
        path=str(p), format="jsonl", ts_field="when", client_field="addr", status_field="code"
    )
    assert audit_access_logs(cfg(tmp_path, [src]), NOW)[0] == []  # older than lookback_days
    read = read_request_log(src)
    assert (
        len(read.records) == 50 and read.records[0].client == "203.0.113.5" and read.records[0].status == 401
    )


def test_helpers():
    assert parse_ts("24/Nov/2026:13:00:00 +0100") == datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert parse_ts(1764000000000) == datetime.fromtimestamp(1764000000, UTC)
    assert parse_ts("2026-11-24T10:00:00") == datetime(2026, 11, 24, 10, tzinfo=UTC)
    ts = [T0 + timedelta(seconds=s) for s in (0, 100, 200, 400, 401, 402, 403)]
    n, a, b = max_in_window(ts, 300)
    assert n == 5 and a == T0 + timedelta(seconds=200)
