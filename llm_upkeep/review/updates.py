"""Model update check: has the tag we follow moved away from the version we pinned?

Read-only by design (playbook: never auto-update, always pin, test in staging first): it asks
the registry what the tag points at now, reads local manifests at most, and writes nothing.

- Ollama: ``GET {registry}/v2/{namespace}/{model}/manifests/{tag}``; the digest is the
  ``Docker-Content-Digest`` header, else the sha256 of the manifest bytes (what Ollama stores
  locally, so the local manifest file hashes to the same value).
- Hugging Face-style: ``GET {endpoint}/api/models/{repo}/revision/{ref}``; the digest is ``sha``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel, Field

from llm_upkeep.checks import SEVERITY, CheckResult, Status
from llm_upkeep.configbase import resolve_secret
from llm_upkeep.models.lock import Lock, LockError, read_lock
from llm_upkeep.models.promote import BACKUP_PREFIX
from llm_upkeep.redact import redact
from llm_upkeep.review.config import PinnedModel, ReviewConfig

MANIFEST_ACCEPT = "application/vnd.docker.distribution.manifest.v2+json"
MAX_BODY = 4 * 1024 * 1024
_NAME_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
DIGEST = re.compile(r"^[a-z0-9]+:[0-9a-f]{32,128}$")


def _scalar(v: Any) -> bool:
    """A registry's info field worth repeating: short text, a number or a flag, not a structure."""
    return isinstance(v, bool | int | float) or (isinstance(v, str) and len(v) <= 100)


class RegistryError(Exception):
    """A registry answer we cannot use; the message is safe to show (redacted, no secrets)."""


class ModelUpdate(BaseModel):
    name: str = Field(description="Model name or repo id.")
    source: Literal["ollama", "hf"] = Field(description="Registry kind.")
    ref: str = Field(description="Tag or revision followed.")
    pinned_digest: str | None = Field(default=None, description="The pinned version (None: not pinned).")
    pinned_from: str | None = Field(default=None, description="Where the pinned digest came from.")
    current_digest: str | None = Field(default=None, description="What the registry's tag points at now.")
    status: Literal["up_to_date", "update_available", "unpinned", "error"] = Field(description="Outcome.")
    detail: str = Field(default="", description="What is newer, or why the check failed.")
    url: str = Field(default="", description="What was asked.")
    info: dict[str, Any] = Field(
        default_factory=dict, description="Size, last modified, layers of the new version."
    )


class UpdateReview(BaseModel):
    verdict: Status = Field(description="ok, warn (updates or unpinned), error (registry failed) or skipped.")
    summary: str = Field(description="One line.")
    models: list[ModelUpdate] = Field(default_factory=list, description="One entry per pinned model.")
    checks: list[CheckResult] = Field(default_factory=list, description="model_update per model.")
    candidates: list[Any] = Field(
        default_factory=list,
        description="Newer tags / quantizations / sibling repos to evaluate (review/discovery.Candidate).",
    )
    candidate_notes: list[str] = Field(default_factory=list, description="Families whose candidates could not be listed.")


def as_pinned(item: PinnedModel | Sequence | dict) -> PinnedModel:
    """Accept a config entry, a (name, source, ref, digest) tuple, or a dict (e.g. from models.lock)."""
    if isinstance(item, PinnedModel):
        return item
    if isinstance(item, dict):
        return PinnedModel.model_validate(item)
    name, source, ref, digest = item
    return PinnedModel(name=name, source=source, ref=ref, digest=digest)


def pins_from_lock(lock: Lock | None) -> list[PinnedModel]:
    """The Ollama tags of models.lock, each with the digest it pins (file-based versions name no
    registry, so they are not asked about). Duplicates across endpoints are left to pinned_models."""
    if lock is None:
        return []
    return [
        PinnedModel(name=t.name, source="ollama", digest=t.digest)
        for pins in lock.endpoints.values()
        for t in pins.tags
        # our own rollback copy of a previous version: no registry has that tag
        if not t.name.rpartition(":")[2].startswith(BACKUP_PREFIX)
    ]


def _pin_key(p: PinnedModel) -> tuple:
    if p.source == "ollama":
        try:
            return ("ollama", *parse_ollama_name(p.name, p.ref))
        except ValueError:
            return ("ollama", p.name, p.ref)
    return ("hf", p.name, p.ref or "main")


def pinned_models(
    config_pins: Iterable[PinnedModel], lock_file: str | Path | None
) -> list[tuple[PinnedModel, str]]:
    """[[review.pinned]] first, then models.lock's tags that the config does not list: one place to pin
    (promotions re-pin the lock) and the review follows it. Each comes with where its digest is from."""
    out = [(p, "config") for p in config_pins]
    if lock_file is None:
        return out
    keys = {_pin_key(p) for p, _ in out}
    for p in pins_from_lock(read_lock(lock_file)):
        if _pin_key(p) not in keys:
            keys.add(_pin_key(p))
            out.append((p, "models.lock"))
    return out


def parse_ollama_name(name: str, ref: str | None = None) -> tuple[str, str, str]:
    """'llama3:8b' -> ('library', 'llama3', '8b'); 'me/m' -> ('me', 'm', 'latest'); a host prefix is dropped."""
    base, _, tag = name.rpartition(":") if ":" in name.split("/")[-1] else (name, "", "")
    parts = base.split("/")
    if len(parts) == 3:  # registry.ollama.ai/library/llama3
        parts = parts[1:]
    namespace, model = (parts[0], parts[1]) if len(parts) == 2 else ("library", parts[0])
    tag = ref or tag or "latest"
    for part in (namespace, model, tag):
        if not _NAME_PART.match(part):
            raise ValueError(f"not a valid Ollama model name: {name!r}")
    return namespace, model, tag


def normalize_digest(d: str | None) -> str | None:
    if not d:
        return None
    d = d.strip().lower()
    return d if ":" in d or len(d) < 64 else f"sha256:{d}"


def same_digest(pinned: str, current: str) -> bool:
    """Exact match, or the short ID `ollama list` shows (a prefix of the hex, 12+ characters)."""
    p, c = pinned.lower(), current.lower()
    if p == c:
        return True
    hex_c = c.split(":", 1)[-1]
    hex_p = p.split(":", 1)[-1]
    return len(hex_p) >= 12 and hex_c.startswith(hex_p)


def local_ollama_digest(
    models_dir: str | Path, registry_url: str, namespace: str, model: str, tag: str
) -> str | None:
    """Digest of the manifest Ollama stored when it pulled the model; None when not pulled."""
    host = urlsplit(registry_url).netloc
    p = Path(models_dir).expanduser() / "manifests" / host / namespace / model / tag
    try:
        with open(p, "rb") as f:  # read-only: never created, never touched
            return "sha256:" + hashlib.sha256(f.read(MAX_BODY)).hexdigest()
    except OSError:
        return None


def _read_capped(r: httpx.Response, cap: int) -> bytes | None:
    """The body read chunk by chunk, None as soon as it passes ``cap`` (never held whole)."""
    size = r.headers.get("content-length", "")
    if size.isdigit() and int(size) > cap:
        return None
    buf = bytearray()
    for chunk in r.iter_bytes():
        buf += chunk
        if len(buf) > cap:
            return None
    return bytes(buf)


def _get(http: httpx.Client, url: str, headers: dict[str, str]) -> tuple[httpx.Response, bytes]:
    """(response, body) of a GET; the body is capped at MAX_BODY while it is read."""
    try:
        with http.stream("GET", url, headers=headers) as r:
            body = _read_capped(r, MAX_BODY if r.status_code < 400 else 4096)
    except httpx.TimeoutException as e:
        raise RegistryError(f"timeout ({type(e).__name__}) asking {redact(url)}") from None
    except httpx.HTTPError as e:
        raise RegistryError(redact(f"cannot reach registry ({type(e).__name__}: {e})")) from None
    if r.status_code == 404:
        raise RegistryError(f"not found in the registry (HTTP 404): {redact(url)}")
    if r.status_code in (401, 403):
        raise RegistryError(
            f"not authorized (HTTP {r.status_code}); private model? set a token: {redact(url)}"
        )
    if r.status_code >= 400:
        text = (body or b"").decode("utf-8", "replace")
        raise RegistryError(f"registry answered HTTP {r.status_code}: {redact(text[:200])}")
    if body is None:
        raise RegistryError(f"answer too large (over {MAX_BODY} bytes; reading stopped)")
    return r, body


def fetch_ollama_digest(http: httpx.Client, registry_url: str, namespace: str, model: str, tag: str):
    """(digest, info) of the manifest the tag points at now."""
    url = f"{registry_url}/v2/{namespace}/{model}/manifests/{tag}"
    r, body = _get(http, url, {"Accept": MANIFEST_ACCEPT})
    try:
        manifest = json.loads(body)
    except (ValueError, RecursionError):
        raise RegistryError("malformed manifest (not JSON)") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("layers"), list):
        raise RegistryError("malformed manifest (no layers)")
    header = r.headers.get("Docker-Content-Digest")
    digest = header.strip().lower() if header else "sha256:" + hashlib.sha256(body).hexdigest()
    if not DIGEST.match(digest):
        raise RegistryError(f"malformed digest header {redact(digest[:80])!r}")
    layers = manifest["layers"]
    for i, x in enumerate(layers):
        if not isinstance(x, dict):
            raise RegistryError(f"malformed manifest (layer {i} is {type(x).__name__}, not an object)")
        if not isinstance(x.get("size", 0), int) or isinstance(x.get("size"), bool):
            raise RegistryError(f"malformed manifest (layer {i} size is not a number)")
    model_layer = next((x for x in layers if "image.model" in str(x.get("mediaType", ""))), None)
    layer_digest = model_layer.get("digest") if model_layer else None
    info = {
        "size_bytes": sum(int(x.get("size") or 0) for x in layers),
        "layers": len(layers),
        "model_layer": layer_digest if isinstance(layer_digest, str) else None,
    }
    return digest, info, url


def fetch_hf_revision(http: httpx.Client, endpoint: str, repo: str, ref: str, token: str | None):
    """(sha, info) of the revision a branch/tag points at now."""
    if repo.count("/") > 1 or not all(_NAME_PART.match(p) for p in repo.split("/")):
        raise RegistryError(f"not a valid repo id: {repo!r}")
    url = f"{endpoint}/api/models/{repo}/revision/{quote(ref, safe='')}"
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    _r, body = _get(http, url, headers)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise RegistryError("malformed answer (not JSON)") from None
    sha = data.get("sha") if isinstance(data, dict) else None
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-fA-F]{7,64}", sha):
        raise RegistryError("answer has no 'sha' (a hex commit id)")
    info = {k: data[k] for k in ("lastModified", "private", "gated") if k in data and _scalar(data[k])}
    return sha.lower(), info, url


def _check(m: ModelUpdate) -> CheckResult:
    status = {
        "up_to_date": Status.OK, "update_available": Status.WARN, "unpinned": Status.WARN, "error": Status.ERROR,
    }[m.status]  # fmt: skip
    return CheckResult(
        check="model_update", target=f"{m.name}" + (f"@{m.ref}" if m.ref else ""), status=status,
        value=m.status, detail=m.detail,
    )  # fmt: skip


def check_model(
    p: PinnedModel, cfg: ReviewConfig, http: httpx.Client, *, source: str = "config"
) -> ModelUpdate:
    pinned = normalize_digest(p.digest)
    pinned_from = source if pinned else None
    try:
        if p.source == "ollama":
            ns, model, tag = parse_ollama_name(p.name, p.ref)
            ref = tag
            if not pinned and cfg.ollama_models_dir:
                pinned = local_ollama_digest(cfg.ollama_models_dir, cfg.ollama_registry_url, ns, model, tag)
                pinned_from = "local manifest" if pinned else None
            current, info, url = fetch_ollama_digest(http, cfg.ollama_registry_url, ns, model, tag)
        else:
            ref = p.ref or "main"
            token = resolve_secret(cfg.hf_token_env, key="review.hf_token_env", required=False)
            current, info, url = fetch_hf_revision(http, cfg.hf_endpoint, p.name, ref, token)
    except (RegistryError, ValueError) as e:
        return ModelUpdate(
            name=p.name, source=p.source, ref=p.ref or "", pinned_digest=pinned, pinned_from=pinned_from,
            status="error", detail=redact(str(e)),
        )  # fmt: skip
    base = dict(name=p.name, source=p.source, ref=ref, pinned_digest=pinned, pinned_from=pinned_from,
                current_digest=current, url=redact(url), info=info)  # fmt: skip
    if not pinned:
        return ModelUpdate(
            **base, status="unpinned",
            detail=f"not pinned: {ref} is {current[:19]} now; pin it (digest) so changes are noticed",
        )  # fmt: skip
    if same_digest(pinned, current):
        return ModelUpdate(
            **base, status="up_to_date", detail=f"{ref} still points at the pinned {pinned[:19]}"
        )
    newer = f"{ref} now points at {current[:19]} (pinned {pinned[:19]})"
    if info.get("lastModified"):
        newer += f", changed {info['lastModified']}"
    if info.get("size_bytes"):
        newer += f", {info['size_bytes'] / 1e9:.2f} GB"
    return ModelUpdate(
        **base, status="update_available",
        detail=newer + "; not applied: test it in staging with the benchmark suite, then re-pin",
    )  # fmt: skip


def _check_one(p: PinnedModel, cfg: ReviewConfig, http: httpx.Client, source: str) -> ModelUpdate:
    """check_model, with any answer it did not foresee as this model's error row, never the
    whole review's (a manifest layer that was not an object once hid every model's result)."""
    try:
        return check_model(p, cfg, http, source=source)
    except Exception as e:  # noqa: BLE001 - classified below, per model
        return ModelUpdate(
            name=p.name, source=p.source, ref=p.ref or "", pinned_digest=normalize_digest(p.digest),
            status="error", detail=redact(f"unusable registry answer ({type(e).__name__}: {e})")[:300],
        )  # fmt: skip


def check_model_updates(
    pinned: Iterable[PinnedModel | Sequence | dict],
    cfg: ReviewConfig,
    http: httpx.Client | None = None,
    *,
    lock_file: str | Path | None = None,
) -> UpdateReview:
    """Ask the registries about every pinned model; one failure does not hide the others."""
    try:
        models = pinned_models([as_pinned(x) for x in pinned], lock_file)
    except LockError as exc:
        detail = redact(str(exc))
        return UpdateReview(
            verdict=Status.ERROR, summary=f"models.lock unreadable: {detail}",
            checks=[CheckResult(check="model_update", target="models.lock", status=Status.ERROR, detail=detail)],
        )  # fmt: skip
    if not models:
        return UpdateReview(
            verdict=Status.SKIPPED, summary="no pinned models ([[review.pinned]] or models.lock)",
            checks=[CheckResult(check="model_update", target="all", status=Status.SKIPPED, detail="none pinned")],
        )  # fmt: skip
    own = http is None
    if own:
        http = httpx.Client(
            timeout=httpx.Timeout(cfg.registry_timeout_s, connect=cfg.registry_connect_timeout_s),
            follow_redirects=True, headers={"User-Agent": "llm-upkeep weekly-review"},
        )  # fmt: skip
    cands, cand_notes = [], []
    try:
        results = [_check_one(p, cfg, http, src) for p, src in models]
        if cfg.discover_candidates:  # llm_upkeep/review/discovery.py: metadata only, never a pull
            from llm_upkeep.review.discovery import discover_candidates

            found, cand_notes = discover_candidates([p for p, _ in models], cfg, http)
            cands = [c.model_dump() for c in found]
    finally:
        if own:
            http.close()
    checks = [_check(m) for m in results]
    worst = max(checks, key=lambda c: SEVERITY[c.status]).status
    n_new = sum(m.status == "update_available" for m in results)
    n_err = sum(m.status == "error" for m in results)
    n_unp = sum(m.status == "unpinned" for m in results)
    parts = [f"{n_new} update(s) available" if n_new else "no updates"]
    if n_unp:
        parts.append(f"{n_unp} unpinned")
    if n_err:
        parts.append(f"{n_err} check(s) failed")
    summary = (
        f"{len(results)} pinned model(s): "
        + ", ".join(parts)
        + f" (checked {datetime.now(UTC):%Y-%m-%d %H:%M} UTC)"
    )
    if cands:
        summary += f"; {len(cands)} candidate(s) to evaluate"
    return UpdateReview(verdict=worst, summary=summary, models=results, checks=checks, candidates=cands,
                        candidate_notes=cand_notes)  # fmt: skip
