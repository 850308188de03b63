"""One classified error type for every way an LLM server call can fail.

Why: checks and the runbook act on the *kind* of failure (refused -> restart, OOM -> reduce
concurrency, truncated -> crash mid-stream), so clients never leak raw httpx exceptions.
"""

from __future__ import annotations

import json
import re

from llm_upkeep.redact import redact

KINDS = (
    "connection_refused",
    "connect_timeout",
    "timeout",
    "http_4xx",
    "http_5xx",
    "oom",
    "malformed",
    "truncated",
    "auth",
    "protocol",
)

_OOM = re.compile(
    r"out of memory|\bOOM\b|kv[ _-]?cache|requires more system memory|cudaMalloc failed|"
    r"unable to allocate .*buffer|insufficient memory",
    re.IGNORECASE,
)

MAX_DETAIL = 300


def short_detail(text: object, limit: int = MAX_DETAIL) -> str:
    """Redacted, single-line, bounded: safe for logs, alerts and JSON."""
    s = " ".join(redact(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def mentions_oom(text: str) -> bool:
    return bool(_OOM.search(text or ""))


class LLMError(Exception):
    """A classified LLM server failure; ``detail`` is redacted and short."""

    def __init__(self, kind: str, detail: str, status_code: int | None = None):
        if kind not in KINDS:
            raise ValueError(f"unknown LLMError kind {kind!r}")
        self.kind = kind
        self.detail = short_detail(detail)
        self.status_code = status_code
        super().__init__(f"{kind}: {self.detail}")


def classify_status(status: int, body: str) -> LLMError:
    """Map an HTTP error status and its body to a kind."""
    msg = short_detail(f"HTTP {status}: {_error_message(body)}")
    if status in (401, 403):
        return LLMError("auth", msg, status)
    if mentions_oom(body) and (status >= 500 or status in (400, 429, 503)):
        return LLMError("oom", msg, status)
    if status >= 500:
        return LLMError("http_5xx", msg, status)
    if status >= 400:
        return LLMError("http_4xx", msg, status)
    return LLMError("protocol", msg, status)


def _error_message(body: str) -> str:
    """Pull the message out of Ollama ({"error": "..."}), vLLM/OpenAI ({"message"}/{"error": {...}}) bodies."""
    body = body or ""
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip() or "(empty body)"
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            return str(err.get("message") or err)
        if err:
            return str(err)
        if data.get("message"):
            return str(data["message"])
        if data.get("detail"):
            return str(data["detail"])
    return body.strip()
