"""Keep secrets out of logs, artifacts, alerts and exceptions.

Every secret read through config is registered here; :func:`redact` replaces registered
values and well-known secret shapes (Slack webhooks and tokens, bearer tokens, AWS keys).
A logging filter applies it to every record of the package and of Prefect.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import threading

_lock = threading.Lock()
_secrets: set[str] = set()

MASK = "***"

_PATTERNS = [
    re.compile(r"https?://hooks\.slack\.com/services/[A-Za-z0-9/_-]+"),
    re.compile(r"(/services/)T[A-Za-z0-9_-]+/B[A-Za-z0-9_-]+/[A-Za-z0-9_-]+"),
    re.compile(r"xox[abposr]-[A-Za-z0-9-]{8,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"(?i)(authorization[\"']?\s*[:=,]\s*[\"']?basic\s+)[A-Za-z0-9+/]{4,}={0,2}"),
    re.compile(r"(?<![A-Z0-9])(AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])"),
    re.compile(r"(?i)(aws_secret_access_key\s*[=:]\s*)\S+"),
]


# Secrets the process holds from its environment rather than through the config: the Prefect
# API credentials (basic auth string of the server and its clients, Prefect Cloud's key).
ENV_SECRETS = ("PREFECT_API_AUTH_STRING", "PREFECT_SERVER_API_AUTH_STRING", "PREFECT_API_KEY")


def register_env_secrets(names: tuple[str, ...] = ENV_SECRETS) -> None:
    """Register those values (and the base64 form an Authorization: Basic header carries)."""
    for name in names:
        value = os.environ.get(name)
        if value:
            register_secret(value)
            register_secret(base64.b64encode(value.encode()).decode())


def register_secret(value: str | None) -> None:
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def redact(text: object) -> str:
    s = str(text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for v in secrets:
        if v in s:
            s = s.replace(v, MASK)
    for pat in _PATTERNS:
        if pat.groups:
            s = pat.sub(lambda m: m.group(1) + MASK, s)
        else:
            s = pat.sub(MASK, s)
    return s


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # a broken format string must not kill logging
            return True
        red = redact(msg)
        if red != msg:
            record.msg, record.args = red, None
        # A traceback carries exception text and, with rich or Prefect's handlers, locals: format
        # it here once, redacted; handlers print exc_text instead of formatting exc_info again.
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            try:
                record.exc_text = _FORMATTER.formatException(record.exc_info)
            except Exception:  # noqa: BLE001 - an odd exception must not kill logging
                record.exc_text = f"{record.exc_info[0].__name__}: (traceback unavailable)"
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FORMATTER = logging.Formatter()


def _redacting_excepthook(exc_type, exc, tb) -> None:  # type: ignore[no-untyped-def]
    """An uncaught exception's traceback goes to stderr redacted, like any log line."""
    import sys
    import traceback

    sys.stderr.write(redact("".join(traceback.format_exception(exc_type, exc, tb))))


_installed = False


def install_log_redaction() -> None:
    """Attach the filter to every handler of the root, prefect and llm_upkeep loggers."""
    global _installed
    register_env_secrets()
    filt = RedactingFilter()
    for name in ("", "prefect", "llm_upkeep", "prefect.flow_runs", "prefect.task_runs"):
        lg = logging.getLogger(name)
        lg.addFilter(filt)
        for h in lg.handlers:
            h.addFilter(filt)
    import sys

    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = _redacting_excepthook
    _installed = True
