"""Classified backup failures: a kind scripts can branch on and a message a person can act on."""

from __future__ import annotations

from llm_upkeep.redact import redact


class BackupError(Exception):
    """A failure with a stable ``kind`` (e.g. unreachable, locked, unsafe_manifest).

    ``retryable`` tells the flow whether a task retry may help (network, not a bad config).
    """

    def __init__(self, kind: str, message: str, *, retryable: bool = False):
        self.kind = kind
        self.retryable = retryable
        super().__init__(redact(message))

    def public(self) -> dict[str, str]:
        return {"error": self.kind, "message": str(self)}

    def __reduce__(self):
        # Exceptions pickle as cls(*args); ours take keyword state too (Prefect may pickle failures).
        return (_rebuild, (self.__class__, self.kind, str(self), self.retryable))


def _rebuild(cls: type[BackupError], kind: str, message: str, retryable: bool) -> BackupError:
    err = Exception.__new__(cls)
    Exception.__init__(err, message)
    err.kind = kind
    err.retryable = retryable
    return err


class NotConfiguredError(BackupError):
    def __init__(self, source: str | None = None):
        where = f" in {source}" if source else ""
        super().__init__(
            "not_configured",
            f"backup is not configured: set [backup] bucket (and [[backup.sets]]){where}",
        )
