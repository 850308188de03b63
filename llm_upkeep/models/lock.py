"""models.lock: the pinned versions of every managed endpoint, as human-readable TOML.

Why TOML with one table per endpoint: the file is reviewed like code (a changed digest in a
diff is a changed model), and it is what `models verify` checks offline. Ollama tags pin the
manifest digest (what `ollama list` shows) and every layer's digest and size; file-based
versions pin the sha256 and size of every file.
"""

from __future__ import annotations

import os
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import tomli_w
from pydantic import BaseModel, Field, ValidationError

LOCK_VERSION = 1

HEADER = """\
# models.lock: pinned model versions, written by `llm-upkeep models pin` (and by promotions).
# `llm-upkeep models verify` checks what is on disk against it, offline. Review a change to
# this file like a code change: a new digest is a new model.
"""


class LockError(Exception):
    """A lock file that cannot be read, parsed or written (names the file)."""


class LayerPin(BaseModel):
    digest: str = Field(description="sha256:<hex> of the blob.")
    size: int = Field(ge=0, description="Bytes, as the manifest says.")
    media_type: str = Field(default="", description="The layer's mediaType.")


class TagPin(BaseModel):
    """One Ollama model (tag): its manifest and every blob it names."""

    name: str = Field(description="Model name as Ollama lists it (model:tag).")
    manifest: str = Field(description="Manifest path relative to the models dir.")
    digest: str = Field(description="sha256:<hex> of the manifest file (the digest /api/tags reports).")
    size: int = Field(ge=0, description="Total bytes of its blobs.")
    layers: list[LayerPin] = Field(default_factory=list, description="Config blob first, then the layers.")
    pinned_at: str = Field(description="When it was pinned (UTC, ISO 8601).")


class FilePin(BaseModel):
    path: str = Field(description="Path relative to the version's root.")
    sha256: str = Field(description="Hex sha256 of the file.")
    size: int = Field(ge=0, description="Bytes.")


class VersionPin(BaseModel):
    """One file-based version: a single file, or a directory of files (safetensors shards)."""

    name: str = Field(description="Version name: its entry in versions_dir.")
    root: str = Field(description="Directory the file paths are relative to.")
    files: list[FilePin] = Field(default_factory=list, description="Every file of the version.")
    pinned_at: str = Field(description="When it was pinned (UTC, ISO 8601).")

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


class EndpointPins(BaseModel):
    store: Literal["ollama", "files"] = Field(description="ollama | files.")
    models_dir: str | None = Field(default=None, description="Ollama store the tags were pinned from.")
    versions_dir: str | None = Field(default=None, description="Directory of file-based versions.")
    tags: list[TagPin] = Field(default_factory=list, description="Pinned Ollama models.")
    versions: list[VersionPin] = Field(default_factory=list, description="Pinned file-based versions.")

    def tag(self, name: str) -> TagPin | None:
        from llm_upkeep.models.store import parse_model_name

        want = parse_model_name(name)
        return next((t for t in self.tags if parse_model_name(t.name) == want), None)

    def version(self, name: str) -> VersionPin | None:
        return next((v for v in self.versions if v.name == name), None)

    def upsert_tag(self, pin: TagPin) -> None:
        from llm_upkeep.models.store import parse_model_name

        key = parse_model_name(pin.name)
        self.tags = sorted(
            [t for t in self.tags if parse_model_name(t.name) != key] + [pin], key=lambda t: t.name
        )

    def upsert_version(self, pin: VersionPin) -> None:
        self.versions = sorted([v for v in self.versions if v.name != pin.name] + [pin], key=lambda v: v.name)


class Lock(BaseModel):
    version: int = Field(default=LOCK_VERSION, description="Lock file format version.")
    generated_at: str = Field(default="", description="When it was last written (UTC).")
    endpoints: dict[str, EndpointPins] = Field(default_factory=dict, description="Pins per endpoint.")


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def read_lock(path: str | os.PathLike) -> Lock | None:
    """The lock, or None when the file does not exist."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except tomllib.TOMLDecodeError as exc:
        raise LockError(f"{p}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise LockError(f"{p}: cannot read: {exc.strerror}") from None
    try:
        lock = Lock.model_validate(data)
    except ValidationError as exc:
        e = exc.errors()[0]
        raise LockError(f"{p}: {'.'.join(str(x) for x in e['loc'])}: {e['msg']}") from None
    if lock.version != LOCK_VERSION:
        raise LockError(f"{p}: lock format version {lock.version} is not {LOCK_VERSION}")
    return lock


def render_lock(lock: Lock) -> str:
    data = lock.model_dump(mode="json", exclude_none=True)
    for ep in data.get("endpoints", {}).values():
        for k in ("tags", "versions"):
            if not ep.get(k):
                ep.pop(k, None)  # an Ollama endpoint has no versions, a files endpoint no tags
    return HEADER + "\n" + tomli_w.dumps(data)


def write_lock(path: str | os.PathLike, lock: Lock) -> Path:
    """Temp file + fsync + parse back + os.replace: a crash never leaves a half-written lock."""
    p = Path(path)
    lock.generated_at = now_iso()
    text = render_lock(lock)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if read_lock(tmp) != lock:
            raise LockError(f"{tmp}: the written lock does not read back the same")
        os.replace(tmp, p)
    except OSError as exc:
        raise LockError(f"{p}: cannot write: {exc.strerror or exc}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return p


def update_lock(path: str | os.PathLike, change) -> Lock:
    """Read-modify-write under an exclusive lock, so a promotion and a pin cannot lose each other's pins."""
    import fcntl

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p.with_name(f".{p.name}.flock"), "a+") as lf:
        fcntl.flock(lf, fcntl.LOCK_EX)
        lock = read_lock(p) or Lock()
        change(lock)
        write_lock(p, lock)
        return lock
