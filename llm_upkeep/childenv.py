"""The environment handed to commands llm-upkeep runs (restart, setting hook, log readers).

Why an allowlist: the autopilot's own environment holds every secret it may need (S3 keys,
Slack webhook, API keys, Prefect's auth string). A restart script or a log reader needs none
of them, and whatever it prints or crashes with ends up in ledgers and alerts. So a child gets
only what locates programs and formats output, and even those are dropped when they contain a
value the redactor knows as a secret.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from llm_upkeep.redact import MASK, redact

KEEP = (
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "TZ", "TMPDIR", "LANG", "LANGUAGE",
    "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS",  # systemctl --user
    "PYTHONPATH", "VIRTUAL_ENV",  # scripts of the same installation
)  # fmt: skip
"""Variables a child keeps (plus LC_*); everything else stays in llm-upkeep's process."""


def child_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """A minimal environment for a command: the KEEP variables and LC_*, none carrying a secret."""
    src = os.environ if environ is None else environ
    out: dict[str, str] = {}
    for k, v in src.items():
        if (k in KEEP or k.startswith("LC_")) and MASK not in redact(v):
            out[k] = v
    out.setdefault("PATH", os.defpath)
    return out
