"""The active version: an atomic symlink swap or env-file rewrite, and the switch history.

Why atomic: the server may restart (or crash and be restarted by systemd) at any moment; it
must find either the old target or the new one, never a missing link or a half-written env
file. A new symlink is made under a temporary name and renamed over the old one (rename(2)
replaces atomically); an env file is written to a temp file, fsynced, read back and renamed.

The history (state_dir/models/<endpoint>/history.jsonl) is what a rollback undoes: every
promotion pushes the version it replaced, every rollback pops one.
"""

from __future__ import annotations

import fcntl
import os
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from llm_upkeep.models.endpoints import Managed

HISTORY = "history.jsonl"


class ActiveError(Exception):
    """The active selector cannot be read or changed (names the path)."""


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a directory; the rename is still atomic
    finally:
        os.close(fd)


def read_symlink(link: Path) -> str | None:
    """Absolute target of the link, None when there is no link."""
    try:
        target = os.readlink(link)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ActiveError(f"{link}: not a symlink ({exc.strerror})") from None
    return os.path.normpath(os.path.join(link.parent, target))


def swap_symlink(link: Path, target: Path) -> str | None:
    """Point link at target atomically; returns the previous target."""
    if not target.exists():
        raise ActiveError(f"{target}: does not exist; the link would dangle")
    if link.exists() and not link.is_symlink():
        raise ActiveError(f"{link}: is a regular file, not a symlink; refusing to replace it")
    previous = read_symlink(link)
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.{uuid.uuid4().hex[:8]}.tmp")
    os.symlink(os.path.abspath(target), tmp)
    try:
        if read_symlink(tmp) != os.path.abspath(target):
            raise ActiveError(f"{tmp}: new link does not read back as {target}")
        os.replace(tmp, link)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    _fsync_dir(link.parent)
    return previous


_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")


def _unquote(v: str) -> str:
    v = v.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
        return v[1:-1]
    return v


def read_env_var(env_file: Path, var: str) -> str | None:
    try:
        text = env_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ActiveError(f"{env_file}: cannot read: {exc.strerror}") from None
    value = None
    for line in text.splitlines():
        m = _ENV_LINE.match(line)
        if m and m.group(1) == var:
            value = _unquote(m.group(2))
    return value


def write_env_var(env_file: Path, var: str, value: str) -> str | None:
    """Set var=value in the env file, keeping every other line; returns the previous value."""
    if "\n" in value or '"' in value:
        raise ActiveError(f"{value!r}: a path with a newline or a quote cannot go in an env file")
    if any(c in value for c in "$`\\"):
        # inside double quotes a shell that sources the file would run $(...) and `...`
        raise ActiveError(f"{value!r}: a path with $, a backtick or a backslash cannot go in an env file")
    previous = read_env_var(env_file, var)
    try:
        lines = env_file.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    new_line = f'{var}="{value}"'
    out, done = [], False
    for line in lines:
        m = _ENV_LINE.match(line)
        if m and m.group(1) == var:
            if not done:
                out.append(new_line)
                done = True
            continue
        out.append(line)
    if not done:
        out.append(new_line)
    text = "\n".join(out) + "\n"
    env_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = env_file.with_name(f".{env_file.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        mode = os.stat(env_file).st_mode & 0o7777 if os.path.exists(env_file) else 0o600
        # Created with its final mode before a byte is written: the file may hold secrets, and a
        # temp file made with the default umask was readable by others until the chmod.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode & 0o600)
        with open(fd, "w", encoding="utf-8") as f:
            os.fchmod(fd, mode)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if read_env_var(tmp, var) != value:
            raise ActiveError(f"{tmp}: {var} does not read back as {value!r}")
        os.replace(tmp, env_file)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(env_file.parent)
    return previous


def read_active(m: Managed) -> str | None:
    """What the server is configured to load: a path (files) or a model name (Ollama)."""
    if m.store == "ollama":
        return m.endpoint.model
    if m.active_link:
        return read_symlink(m.active_link)
    if m.env_file:
        return read_env_var(m.env_file, m.env_var)
    return None


def set_active_path(m: Managed, path: Path) -> str | None:
    """Select path as the active version (files store); returns the previous selection."""
    if m.active_link:
        return swap_symlink(m.active_link, path)
    if m.env_file:
        if not path.exists():
            raise ActiveError(f"{path}: does not exist")
        return write_env_var(m.env_file, m.env_var, os.path.abspath(path))
    raise ActiveError(f"endpoint {m.name}: set active_link or env_file in its [[models.endpoints]] table")


def version_name(m: Managed, selected: str | None) -> str | None:
    """The version entry a selected path belongs to (its first component under versions_dir)."""
    if selected is None or m.versions_dir is None:
        return selected
    try:
        rel = Path(os.path.abspath(selected)).relative_to(os.path.abspath(m.versions_dir))
    except ValueError:
        return selected
    return rel.parts[0] if rel.parts else selected


# ------------------------------------------------------------------ history


class SwitchRecord(BaseModel):
    """One change of the active version (or an attempt)."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12], description="Record id.")
    at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(), description="When (UTC).")
    endpoint: str = Field(description="Endpoint name.")
    action: str = Field(description="promote | rollback | auto-rollback | stage.")
    from_version: str | None = Field(default=None, description="Selection before (path or tag).")
    to_version: str = Field(description="Selection after (path or tag).")
    from_digest: str | None = Field(default=None, description="Digest of the previous model, when known.")
    to_digest: str | None = Field(default=None, description="Digest of the new model, when known.")
    ok: bool = Field(description="The switch took effect and the server answered.")
    undoes: str | None = Field(default=None, description="Id of the promotion a rollback undoes.")
    seconds: float | None = Field(default=None, description="Swap to answering, end to end.")
    reason: str = Field(default="", description="Why (who asked, which run).")


def _history_path(state_dir: Path) -> Path:
    return Path(state_dir) / HISTORY


def append_history(state_dir: Path, rec: SwitchRecord) -> None:
    p = _history_path(state_dir)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "a", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(rec.model_dump_json() + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_history(state_dir: Path) -> list[SwitchRecord]:
    p = _history_path(state_dir)
    out = []
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            out.append(SwitchRecord.model_validate_json(line))
        except ValueError:
            continue  # a torn last line from a crash must not block rollbacks
    return out


def promotion_stack(history: list[SwitchRecord]) -> list[SwitchRecord]:
    """Successful promotions not yet undone, oldest first."""
    stack: list[SwitchRecord] = []
    for r in history:
        if not r.ok:
            continue
        if r.action == "promote":
            stack.append(r)
        elif r.action in ("rollback", "auto-rollback") and r.undoes:
            stack = [s for s in stack if s.id != r.undoes]
    return stack


def recent_versions(history: list[SwitchRecord], active: str | None) -> list[str]:
    """Distinct versions, most recently active first (the active one leads)."""
    seen: list[str] = []
    if active:
        seen.append(active)
    for r in reversed(history):
        for v in (r.to_version, r.from_version) if r.ok else (r.from_version,):
            if v and v not in seen:
                seen.append(v)
    return seen
