"""One TLS context per CA bundle for Prefect's API clients in a flow-run process, instead of one
per client.

Why: every ``PrefectClient``/``SyncPrefectClient`` Prefect creates builds a fresh
``ssl.create_default_context(cafile=certifi.where())`` (or the PREFECT_API_SSL_CERT_FILE bundle),
parsing the whole CA bundle each time, whether the API URL is https or not: 30-45 ms of CPU on our
2-core test machines, and 13 clients in one daily-health host part run locally (a worker's run
opens more); the events client's server-version check builds one more the same way. On a fleet
that is every host's every run, and on the benchmark's 2-core machine it is CPU the 20 host parts
take from the central run.

What this changes: the clients' module and Prefect's version check get an ``ssl`` whose
``create_default_context`` returns one context per distinct argument set and CA-bundle version
(the CA file named by Prefect's settings is part of the key, with its inode, size and
modification time, so a run given another bundle, or a bundle rotated since, gets its own). The
warm starter installs it and builds the verifying context before it forks, so every run starts
with it; the warm worker installs it in its own process too (it opens clients for every run it
submits). Neither caches a bundle for good: a rotated bundle gives the next client a new key and a
fresh context, without a restart. Sharing one
``SSLContext`` between clients is what httpx recommends for speed. Prefect's insecure branch
(PREFECT_API_TLS_INSECURE_SKIP_VERIFY) asks with no arguments and then turns verification off on
what it got; that key is used by nothing else, so a verifying client never receives it. Every
other use of :mod:`ssl` in the process is untouched.
"""

from __future__ import annotations

import os
import ssl
import threading
import types
from typing import Any

from llm_upkeep.clients.tls import bundle_identity

_lock = threading.Lock()


def _bundle_identity(kwargs: dict[str, Any]) -> tuple:
    """The identity of the CA file or directory a create_default_context call names, if any."""
    names = [n for n in ("cafile", "capath") if isinstance(kwargs.get(n), str | os.PathLike)]
    return tuple(bundle_identity(kwargs[n]) for n in names)


class _SharedContexts(types.ModuleType):
    """The :mod:`ssl` module as Prefect's client modules see it, with contexts built once."""

    def __init__(self) -> None:
        super().__init__("ssl")
        self._contexts: dict[tuple, ssl.SSLContext] = {}
        self.built = 0  # contexts really built (the tests read it)

    def __getattr__(self, name: str) -> Any:  # everything else is the real module
        return getattr(ssl, name)

    def create_default_context(self, *args: Any, **kwargs: Any) -> ssl.SSLContext:
        key = (args, tuple(sorted(kwargs.items())), _bundle_identity(kwargs))
        with _lock:
            ctx = self._contexts.get(key)
            if ctx is None:
                ctx = ssl.create_default_context(*args, **kwargs)
                self._contexts[key] = ctx
                self.built += 1
            return ctx


_PATCHED = ("prefect.client.orchestration", "prefect._internal.version_checking")


def share_api_tls_contexts() -> _SharedContexts | None:
    """Make Prefect's API clients in this process share their TLS context. Idempotent; returns the
    shim (None when Prefect's client module no longer builds contexts the way this expects, in
    which case nothing is changed). The version check shares it where it still builds its own."""
    import importlib

    modules = []
    for name in _PATCHED:
        try:
            modules.append(importlib.import_module(name))
        except ImportError:
            if name == _PATCHED[0]:
                return None
    current = getattr(modules[0], "ssl", None)
    if isinstance(current, _SharedContexts):
        return current
    if current is not ssl:
        return None
    shim = _SharedContexts()
    for m in modules:
        if getattr(m, "ssl", None) is ssl:
            m.ssl = shim
    return shim


def prebuild_api_tls_context() -> None:
    """Build the verifying context Prefect's clients will ask for under the current settings (the
    warm starter calls this before it forks, so each run inherits it instead of building it)."""
    import certifi
    from prefect.settings import PREFECT_API_SSL_CERT_FILE, PREFECT_API_TLS_INSECURE_SKIP_VERIFY

    shim = share_api_tls_contexts()
    if shim is None or PREFECT_API_TLS_INSECURE_SKIP_VERIFY.value():
        return
    shim.create_default_context(cafile=PREFECT_API_SSL_CERT_FILE.value() or certifi.where())
