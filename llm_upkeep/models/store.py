"""Ollama's model store on disk, read (and, for tests and imports, written) without Ollama.

Layout (``$OLLAMA_MODELS``, default ``~/.ollama/models``)::

    manifests/<registry>/<namespace>/<model>/<tag>   JSON (Docker image manifest v2)
    blobs/sha256-<hex>                               content-addressed: sha256(file) == <hex>

A manifest names a config blob and layer blobs (weights, template, params, license...) with
their digests and sizes. The digest Ollama reports for a model (``/api/tags``) is the sha256 of
the manifest file itself, so a pin on it pins every layer too. Old Ollama versions named blobs
``sha256:<hex>``; both names are read.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_REGISTRY = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json"
MODEL_MEDIA_TYPE = "application/vnd.ollama.image.model"

_DIGEST = re.compile(r"^sha256[:-]([0-9a-f]{64})$")
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class StoreError(Exception):
    """A store entry that cannot be read or parsed (names the file)."""


@dataclass(frozen=True, slots=True)
class ModelName:
    registry: str
    namespace: str
    model: str
    tag: str

    @property
    def manifest_relpath(self) -> str:
        return f"manifests/{self.registry}/{self.namespace}/{self.model}/{self.tag}"

    @property
    def short(self) -> str:
        """The name as `ollama list` shows it (default registry and namespace left out)."""
        base = self.model
        if self.namespace != DEFAULT_NAMESPACE or self.registry != DEFAULT_REGISTRY:
            base = f"{self.namespace}/{base}"
        if self.registry != DEFAULT_REGISTRY:
            base = f"{self.registry}/{base}"
        return f"{base}:{self.tag}"

    @property
    def repo(self) -> str:
        return self.short.rsplit(":", 1)[0]


def parse_model_name(name: str) -> ModelName:
    """'llama3' -> registry.ollama.ai/library/llama3:latest, like Ollama's own parser."""
    s = name.strip()
    if not s:
        raise ValueError("empty model name")
    tag = DEFAULT_TAG
    last = s.rsplit("/", 1)[-1]
    if ":" in last:
        s, tag = s.rsplit(":", 1)
    parts = s.split("/")
    if len(parts) == 1:
        reg, ns, model = DEFAULT_REGISTRY, DEFAULT_NAMESPACE, parts[0]
    elif len(parts) == 2:
        reg, ns, model = DEFAULT_REGISTRY, parts[0], parts[1]
    elif len(parts) == 3:
        reg, ns, model = parts
    else:
        raise ValueError(f"model name {name!r} has too many '/' parts")
    for p in (ns, model, tag):
        if not _PART.match(p):
            raise ValueError(f"model name {name!r}: invalid part {p!r}")
    if not re.match(r"^[A-Za-z0-9.:_-]+$", reg):
        raise ValueError(f"model name {name!r}: invalid registry {reg!r}")
    return ModelName(reg, ns, model.lower(), tag)


@dataclass(frozen=True, slots=True)
class Layer:
    digest: str  # "sha256:<hex>"
    size: int
    media_type: str

    @property
    def hex(self) -> str:
        return digest_hex(self.digest)


@dataclass(frozen=True, slots=True)
class Manifest:
    name: ModelName
    path: Path
    digest: str  # "sha256:<hex>" of the manifest file's bytes
    size: int
    layers: tuple[Layer, ...]  # the config blob first, then the layers in manifest order

    @property
    def model_bytes(self) -> int:
        return sum(la.size for la in self.layers)


def digest_hex(digest: str) -> str:
    m = _DIGEST.match(digest or "")
    if not m:
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return m.group(1)


def blob_path(models_dir: str | os.PathLike, digest: str) -> Path:
    """Where a blob lives; the legacy 'sha256:<hex>' name when only that one exists."""
    hx = digest_hex(digest)
    blobs = Path(models_dir) / "blobs"
    p = blobs / f"sha256-{hx}"
    if not p.exists():
        legacy = blobs / f"sha256:{hx}"
        if legacy.exists():
            return legacy
    return p


def manifest_path(models_dir: str | os.PathLike, name: str | ModelName) -> Path:
    n = parse_model_name(name) if isinstance(name, str) else name
    return Path(models_dir) / n.manifest_relpath


def parse_manifest(data: bytes, path: Path, name: ModelName) -> Manifest:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StoreError(f"{path}: manifest is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise StoreError(f"{path}: manifest is not a JSON object")
    entries = []
    if isinstance(obj.get("config"), dict) and obj["config"].get("digest"):
        entries.append(obj["config"])
    layers = obj.get("layers")
    if not isinstance(layers, list):
        raise StoreError(f"{path}: manifest has no 'layers' list")
    entries += layers
    out = []
    for e in entries:
        if not isinstance(e, dict):
            raise StoreError(f"{path}: a layer is not an object")
        try:
            digest_hex(str(e.get("digest")))
            size = int(e.get("size"))
        except (TypeError, ValueError):
            raise StoreError(f"{path}: layer with a bad digest or size: {e!r:.120}") from None
        out.append(Layer(digest=str(e["digest"]).replace("sha256-", "sha256:"), size=size,
                         media_type=str(e.get("mediaType", ""))))  # fmt: skip
    return Manifest(
        name=name, path=path, digest="sha256:" + hashlib.sha256(data).hexdigest(), size=len(data),
        layers=tuple(out),
    )  # fmt: skip


def read_manifest(models_dir: str | os.PathLike, name: str | ModelName) -> Manifest:
    n = parse_model_name(name) if isinstance(name, str) else name
    p = manifest_path(models_dir, n)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise StoreError(f"{p}: no manifest for {n.short}") from None
    except OSError as exc:
        raise StoreError(f"{p}: cannot read manifest: {exc.strerror}") from None
    return parse_manifest(data, p, n)


def list_models(models_dir: str | os.PathLike) -> list[ModelName]:
    """Every model with a manifest: manifests/<registry>/<namespace>/<model>/<tag>."""
    root = Path(models_dir) / "manifests"
    out = []
    if not root.is_dir():
        return out
    for p in sorted(root.glob("*/*/*/*")):
        if p.is_file() and not p.name.startswith("."):
            reg, ns, model, tag = p.relative_to(root).parts
            out.append(ModelName(reg, ns, model, tag))
    return out


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if tmp.read_bytes() != data:
            raise OSError(f"{tmp}: read-back differs from what was written")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_blob(models_dir: str | os.PathLike, data: bytes) -> str:
    """Store bytes as a blob (what a pull leaves on disk); returns its 'sha256:<hex>' digest."""
    hx = hashlib.sha256(data).hexdigest()
    p = Path(models_dir) / "blobs" / f"sha256-{hx}"
    if not (p.exists() and p.stat().st_size == len(data)):
        _write_atomic(p, data)
    return f"sha256:{hx}"


def build_manifest(config: bytes, layers: list[tuple[str, bytes]], models_dir: str | os.PathLike) -> bytes:
    """Write the config and layer blobs and return the manifest bytes naming them."""
    cfg_digest = write_blob(models_dir, config)
    entries = []
    for media_type, data in layers:
        entries.append({"mediaType": media_type, "digest": write_blob(models_dir, data), "size": len(data)})
    obj = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": cfg_digest, "size": len(config)},
        "layers": entries,
    }
    return json.dumps(obj, separators=(",", ":")).encode()


def write_manifest(models_dir: str | os.PathLike, name: str | ModelName, data: bytes) -> Manifest:
    """Install manifest bytes under a name (what a pull's 'writing manifest' step or a copy does)."""
    n = parse_model_name(name) if isinstance(name, str) else name
    p = manifest_path(models_dir, n)
    _write_atomic(p, data)
    return parse_manifest(data, p, n)


def write_model(
    models_dir: str | os.PathLike, name: str, weights: bytes, *, extra_layers: list[tuple[str, bytes]] = ()
) -> Manifest:
    """A complete model as `ollama pull` leaves it: blobs with real sha256 names and a manifest."""
    config = json.dumps({"model_format": "gguf", "model_family": "llama", "file_type": "F32"}).encode()
    data = build_manifest(config, [(MODEL_MEDIA_TYPE, weights), *extra_layers], models_dir)
    return write_manifest(models_dir, name, data)
