"""One verifying TLS context per CA bundle for the process's own HTTP clients, rebuilt when the
bundle changes.

Why: ``httpx.AsyncClient(verify=True)`` builds a fresh ``ssl.create_default_context`` from the
whole CA bundle for every client (30 ms of CPU on our 2-core test machine, 45 ms on a slower
one), and a flow run opens several (the daily health's servers' metrics, the runbook, the model
checks): on a fleet that is every host's every run. httpx recommends sharing one context.

Why keyed by the bundle's identity and not cached for good: a long-lived process (the warm
starter that forks every run, the probe process, ``llm-upkeep serve``) must trust a rotated CA
bundle from the next client on, without a restart. The key is the bundle's path and its inode,
size and modification time; replacing or rewriting it makes a new key, so the next client gets
a context built from the new file. What goes into the key is what httpx itself reads for
``verify=True``: SSL_CERT_FILE, then SSL_CERT_DIR when trust_env, else certifi's bundle.

Only for clients that speak HTTP/1.1 (every client :func:`make_http_client` makes): httpcore sets
the ALPN protocols on the context at each connection, so a context shared with an HTTP/2 client
could offer h2 to one of ours. Client certificates are never loaded into it.
"""

from __future__ import annotations

import os
import ssl
import threading

_lock = threading.Lock()
_contexts: dict[tuple, ssl.SSLContext] = {}
built = 0  # contexts really built in this process (the tests read it)


def bundle_identity(path: str | os.PathLike) -> tuple:
    """(path, inode, size, mtime_ns) of a CA file or directory: a new tuple once it is replaced or
    rewritten, which is what makes a cached context safe to keep in a long-lived process."""
    try:
        st = os.stat(path)
    except OSError:  # missing: let ssl raise its own error when the context is built
        return (path, None)
    return (path, st.st_ino, st.st_size, st.st_mtime_ns)


def bundle_source(trust_env: bool = True) -> tuple[str, str]:
    """("cafile" | "capath", path): the CA bundle httpx would load for verify=True."""
    if trust_env and os.environ.get("SSL_CERT_FILE"):
        return "cafile", os.environ["SSL_CERT_FILE"]
    if trust_env and os.environ.get("SSL_CERT_DIR"):
        return "capath", os.environ["SSL_CERT_DIR"]
    import certifi

    return "cafile", certifi.where()


def shared_verify_context(trust_env: bool = True) -> ssl.SSLContext:
    """The verifying context httpx would build for verify=True, built once per bundle version."""
    global built
    kind, path = bundle_source(trust_env)
    key = (kind, *bundle_identity(path))
    with _lock:
        ctx = _contexts.get(key)
        if ctx is None:
            ctx = ssl.create_default_context(**{kind: path})
            for old in [k for k in _contexts if k[:2] == key[:2]]:
                del _contexts[old]  # an earlier version of the same bundle: never handed out again
            _contexts[key] = ctx
            built += 1
        return ctx
