"""One TLS context per flow-run process for Prefect's API clients, instead of one per client.

Why: every ``PrefectClient``/``SyncPrefectClient`` Prefect creates builds a fresh
``ssl.create_default_context(cafile=certifi.where())`` (or the PREFECT_API_SSL_CERT_FILE bundle),
parsing the whole CA bundle each time, whether the API URL is https or not: 45 ms of CPU on our
slower test machine, and 13 clients in one daily-health host part run locally (a worker's run
opens more), so over 0.6 s of a part's CPU went to the same context built over and over. On a
fleet that is every host's every run, and on the benchmark's 2-core machine it is CPU the 20 host
parts take from the central run.

What this changes: in a warm-started run's process only (installed in the forked child, so
nothing is cached in the long-lived zygote), the clients' module gets an ``ssl`` whose
``create_default_context`` returns one context per distinct argument set (the CA file named by
Prefect's settings is part of the key, so a run given another bundle gets its own). Sharing one
``SSLContext`` between clients is what httpx recommends for speed. Prefect's insecure branch
(PREFECT_API_TLS_INSECURE_SKIP_VERIFY) asks with no arguments and then turns verification off on
what it got; that key is used by nothing else, so a verifying client never receives it. Every
other use of :mod:`ssl` in the process is untouched.
"""

from __future__ import annotations

import ssl
import threading
import types
from typing import Any

_lock = threading.Lock()


class _SharedContexts(types.ModuleType):
    """The :mod:`ssl` module as Prefect's client module sees it, with contexts built once."""

    def __init__(self) -> None:
        super().__init__("ssl")
        self._contexts: dict[tuple, ssl.SSLContext] = {}
        self.built = 0  # contexts really built (the tests read it)

    def __getattr__(self, name: str) -> Any:  # everything else is the real module
        return getattr(ssl, name)

    def create_default_context(self, *args: Any, **kwargs: Any) -> ssl.SSLContext:
        key = (args, tuple(sorted(kwargs.items())))
        with _lock:
            ctx = self._contexts.get(key)
            if ctx is None:
                ctx = ssl.create_default_context(*args, **kwargs)
                self._contexts[key] = ctx
                self.built += 1
            return ctx


def share_api_tls_contexts() -> _SharedContexts | None:
    """Make Prefect's API clients in this process share their TLS context. Idempotent; returns the
    shim (None when Prefect's client module no longer builds contexts the way this expects, in
    which case nothing is changed)."""
    import prefect.client.orchestration as orchestration

    current = getattr(orchestration, "ssl", None)
    if isinstance(current, _SharedContexts):
        return current
    if current is not ssl:
        return None
    shim = _SharedContexts()
    orchestration.ssl = shim
    return shim
