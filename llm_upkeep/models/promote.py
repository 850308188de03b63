"""Promote a candidate, roll back to the previous version: swap, restart, probe until it answers.

Files store (llama.cpp, vLLM): the active symlink (or env-file variable) is swapped atomically,
then the server is restarted through the guarded restart (llm_upkeep.restart.restart_server:
ledger, timeout, a budget of its own per endpoint, target '<endpoint>:models'). The restart
command is the endpoint's restart_command, else [restart].command; it is executed even when
[restart].dry_run is on, because a person (or an approved flow) asked for this switch; pass
dry_run=True to see what would happen instead.

Ollama store: versions are tags. The endpoint's model name is an alias that a switch
overwrites with /api/copy (an atomic manifest write in Ollama); before that the current alias
is copied to '<repo>:upkeep-<digest12>', so the previous version stays on disk under a name a
rollback can copy back. No restart: Ollama loads the new manifest on the next request.

After a switch the endpoint is probed until it answers (and, for Ollama, serves the expected
digest) within [models].probe_timeout_s; when it does not, the previous version is restored
the same way (an automatic rollback may use one restart beyond the budget: it undoes the
restart that spent it).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, Field

from llm_upkeep.clients import LLMError, OllamaClient, make_http_client
from llm_upkeep.clients.ollama import same_model
from llm_upkeep.config import Config, RestartConfig
from llm_upkeep.control import ParameterRefused
from llm_upkeep.measure import measure_probe
from llm_upkeep.models.active import (
    ActiveError,
    SwitchRecord,
    append_history,
    promotion_stack,
    read_active,
    read_history,
    recent_versions,
    set_active_path,
    version_name,
)
from llm_upkeep.models.endpoints import Managed, lock_path, managed_endpoint, models_state_dir
from llm_upkeep.models.guard import allowed_rollback_target
from llm_upkeep.models.hashing import Hasher
from llm_upkeep.models.inventory import (
    Problem,
    check_blobs,
    compare_version_pin,
    tag_blob_paths,
    tag_pin,
    version_files,
    version_pin,
)
from llm_upkeep.models.lock import EndpointPins, Lock, LockError, read_lock, update_lock
from llm_upkeep.models.store import StoreError, parse_model_name, read_manifest
from llm_upkeep.probe import ProbeResult
from llm_upkeep.redact import redact
from llm_upkeep.restart import RestartOutcome, restart_server

T = TypeVar("T")

BACKUP_PREFIX = "upkeep-"
API_TIMEOUT_S = 30.0
COPY_CHUNK = 8 * 1024 * 1024


class SwitchError(Exception):
    """A switch that cannot be made (names what is wrong); nothing was changed."""


class Ready(BaseModel):
    """The wait after a switch: did the server answer, how soon, with what."""

    ok: bool = Field(description="A complete answer arrived (and the expected model is served).")
    seconds: float = Field(description="From the start of the wait to the answer (or the give-up).")
    attempts: int = Field(default=0, description="Probes sent.")
    last_error: str | None = Field(default=None, description="Why the last probe failed.")
    answer: str = Field(default="", description="Start of the answer (evidence of which model).")
    digest: str | None = Field(default=None, description="Digest the server reports (Ollama).")


class SwitchResult(BaseModel):
    """One promotion or rollback, end to end."""

    endpoint: str = Field(description="Endpoint name.")
    action: str = Field(description="promote | rollback | auto-rollback.")
    ok: bool = Field(description="The new version is active and answering.")
    dry_run: bool = Field(default=False, description="Nothing was changed.")
    from_version: str | None = Field(default=None, description="Active selection before (path or tag).")
    to_version: str | None = Field(default=None, description="Selection switched to.")
    from_digest: str | None = Field(default=None, description="Digest before, when known.")
    to_digest: str | None = Field(default=None, description="Digest after, when known.")
    restart: RestartOutcome | None = Field(default=None, description="The restart, when one ran.")
    ready: Ready | None = Field(default=None, description="The health probe after the switch.")
    rolled_back: bool = Field(default=False, description="The switch failed and was undone.")
    rollback: dict | None = Field(default=None, description="The automatic rollback's own result.")
    problems: list[Problem] = Field(
        default_factory=list, description="Verification problems of the candidate."
    )
    pruned: list[str] = Field(default_factory=list, description="Old versions removed (keep_versions).")
    record_id: str | None = Field(default=None, description="History record of this switch.")
    swap_s: float | None = Field(default=None, description="Seconds to swap the selector.")
    restart_s: float | None = Field(default=None, description="Seconds the restart command took.")
    ready_s: float | None = Field(default=None, description="Seconds from restart end to the first answer.")
    seconds: float = Field(default=0.0, description="Total, swap to answering (restart included).")
    detail: str = Field(default="", description="What happened, in words.")

    def public(self) -> dict[str, Any]:
        d = self.model_dump(mode="json", exclude={"problems"})
        d["problems"] = [p.public() for p in self.problems]
        return d


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code, even when this thread already runs an event loop
    (a Prefect rollback hook in an async flow): then it runs on a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=target, name="llm-upkeep-sync", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def norm_digest(d: str | None) -> str | None:
    if not d:
        return None
    d = d.replace("sha256-", "sha256:")
    return d if d.startswith("sha256:") else f"sha256:{d}"


def backup_tag(alias: str, digest: str) -> str:
    """'<repo>:upkeep-<digest12>': the alias's content kept under a name of its own."""
    return f"{parse_model_name(alias).repo}:{BACKUP_PREFIX}{norm_digest(digest)[7:19]}"


# ------------------------------------------------------------------ restart


def switch_restart_config(cfg: Config, m: Managed, extra_budget: int = 0) -> RestartConfig:
    return RestartConfig(
        command=list(m.settings.restart_command or cfg.restart.command),
        max_per_day=cfg.models.max_switches_per_day + extra_budget,
        dry_run=False,
        timeout_s=cfg.restart.timeout_s,
        recover_timeout_s=cfg.models.probe_timeout_s,
    )


def needs_restart(cfg: Config, m: Managed) -> bool:
    return m.store == "files" or bool(m.settings.restart_command)


def restart_for_switch(
    cfg: Config, m: Managed, *, reason: str, model: str, dry_run: bool, extra_budget: int = 0
) -> RestartOutcome | None:
    if not needs_restart(cfg, m):
        return None
    return restart_server(
        switch_restart_config(cfg, m, extra_budget), cfg.state_path, target=m.switch_target, reason=reason,
        model=model, dry_run=dry_run,
    )  # fmt: skip


# ------------------------------------------------------------------ Ollama API steps


async def ollama_digests(m: Managed, http: httpx.AsyncClient) -> dict[str, str]:
    """Every tag the server has -> 'sha256:<hex>' of its manifest."""
    client = OllamaClient(m.endpoint, http)
    async with asyncio.timeout(API_TIMEOUT_S):
        tags = await client.tags()
    return {str(t.get("name") or t.get("model")): norm_digest(t.get("digest")) or "" for t in tags}


def _digest_of(digests: dict[str, str], name: str) -> str | None:
    for k, v in digests.items():
        if same_model(k, name):
            return v
    return None


async def ollama_copy(m: Managed, http: httpx.AsyncClient, source: str, destination: str) -> None:
    client = OllamaClient(m.endpoint, http)
    async with asyncio.timeout(API_TIMEOUT_S):
        await client.copy(source, destination)


# ------------------------------------------------------------------ candidates (files store)


def _copy_verified(src: Path, dst: Path, hasher: Hasher) -> None:
    """Copy src to dst via a temp file: hash while copying, fsync, re-read the copy, compare, rename."""
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.import")
    h = hashlib.sha256()
    try:
        with open(src, "rb") as fi, open(tmp, "wb") as fo:
            while chunk := fi.read(COPY_CHUNK):
                h.update(chunk)
                fo.write(chunk)
            fo.flush()
            os.fsync(fo.fileno())
        shutil.copystat(src, tmp)
        again = hasher.hash(tmp)
        if again.sha256 != h.hexdigest():
            raise SwitchError(f"{tmp}: the copy of {src} reads back differently (sha256 {again.sha256})")
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()


def import_version(m: Managed, source: Path, hasher: Hasher) -> Path:
    """Bring a candidate outside versions_dir in (verified copy); an existing identical entry is reused."""
    assert m.versions_dir is not None
    dst = m.versions_dir / source.name
    m.versions_dir.mkdir(parents=True, exist_ok=True)
    if source.is_file():
        if dst.exists():
            a, b = hasher.hash_many([source, dst]).values()
            if a.sha256 != b.sha256:
                raise SwitchError(f"{dst} exists with other content than {source}; rename the candidate")
            return dst
        _copy_verified(source, dst, hasher)
        return dst
    if source.is_dir():
        if dst.exists():
            raise SwitchError(f"{dst} exists; a directory candidate needs a new name")
        stage = m.versions_dir / f".{source.name}.{os.getpid()}.import-dir"
        try:
            for dirpath, _dirs, files in os.walk(source, followlinks=False):
                rel = Path(dirpath).relative_to(source)
                (stage / rel).mkdir(parents=True, exist_ok=True)
                for f in files:
                    _copy_verified(Path(dirpath) / f, stage / rel / f, hasher)
            os.replace(stage, dst)
        finally:
            if stage.exists():
                shutil.rmtree(stage)
        return dst
    raise SwitchError(f"candidate {source} not found")


def resolve_candidate(m: Managed, candidate: str, hasher: Hasher, *, allow_import: bool = True) -> Path:
    """A version name in versions_dir, a path inside it, or a path outside it (imported)."""
    assert m.versions_dir is not None
    p = Path(os.path.expanduser(candidate))
    in_dir = m.versions_dir / candidate
    if not p.is_absolute() and in_dir.exists() and "/" not in candidate:
        return in_dir
    if not p.exists():
        raise SwitchError(
            f"candidate {candidate!r} is neither a version in {m.versions_dir} nor an existing path"
        )
    p = p.resolve()
    try:
        p.relative_to(m.versions_dir.resolve())
        return p
    except ValueError:
        pass
    if not allow_import:
        raise SwitchError(f"{p} is outside {m.versions_dir}")
    return import_version(m, p, hasher)


def verify_file_version(
    cfg: Config, m: Managed, version: str, hasher: Hasher, *, expected_sha256: str | None = None,
    pin: bool = True,
) -> list[Problem]:  # fmt: skip
    """Check a version against its pin (or the given sha256, for a single file); pin it when new."""
    assert m.versions_dir is not None
    vf = version_files(m.versions_dir, version)
    if vf is None or not vf.files:
        return [Problem(model=version, file=str(m.versions_dir / version), expected="present",
                        actual="missing", kind="missing")]  # fmt: skip
    try:
        lock = read_lock(lock_path(cfg))
    except LockError as exc:
        raise SwitchError(str(exc)) from None
    pins = lock.endpoints.get(m.name) if lock else None
    existing = pins.version(version) if pins else None
    digests = hasher.hash_many([vf.abs(r) for r in vf.files])
    if existing is not None:
        problems = compare_version_pin(existing, vf, digests)
        want = (expected_sha256 or "").lower().removeprefix("sha256:")
        if want and not problems and [f.sha256 for f in existing.files] != [want]:
            # A given checksum only narrows: the pin must be that single file's checksum too.
            problems = [Problem(model=version, file=str(vf.root / version), expected=f"sha256:{want}",
                                actual=", ".join(f"sha256:{f.sha256}" for f in existing.files))]  # fmt: skip
        return problems
    new_pin, problems = version_pin(vf, digests)
    if problems:
        return problems
    assert new_pin is not None
    if expected_sha256:
        if len(new_pin.files) != 1:
            return [Problem(model=version, file=str(vf.root), expected="a single file for --sha256",
                            actual=f"{len(new_pin.files)} files", kind="extra")]  # fmt: skip
        got = new_pin.files[0].sha256
        if got != expected_sha256.lower().removeprefix("sha256:"):
            return [Problem(model=version, file=vf.abs(new_pin.files[0].path),
                            expected=f"sha256:{expected_sha256.lower().removeprefix('sha256:')}",
                            actual=f"sha256:{got}")]  # fmt: skip
    if pin:
        _pin_version(cfg, m, new_pin)
    return []


def _endpoint_pins(lock: Lock, m: Managed) -> EndpointPins:
    pins = lock.endpoints.get(m.name)
    if pins is None:
        pins = EndpointPins(store=m.store)  # type: ignore[arg-type]
        lock.endpoints[m.name] = pins
    if m.store == "ollama":
        pins.models_dir = str(m.models_dir)
    else:
        pins.versions_dir = str(m.versions_dir)
    return pins


def _pin_version(cfg: Config, m: Managed, pin) -> None:
    update_lock(lock_path(cfg), lambda lock: _endpoint_pins(lock, m).upsert_version(pin))


def pin_ollama_tags(cfg: Config, m: Managed, names: list[str]) -> None:
    """Re-pin tags from their manifests (after a copy the alias has a new manifest)."""
    assert m.models_dir is not None
    pins = []
    for n in names:
        try:
            pins.append(tag_pin(read_manifest(m.models_dir, n), m.models_dir))
        except StoreError:
            continue  # a remote server's store is not on this disk: nothing to pin here

    def change(lock: Lock) -> None:
        ep = _endpoint_pins(lock, m)
        for p in pins:
            ep.upsert_tag(p)

    if pins:
        update_lock(lock_path(cfg), change)


def verify_ollama_tag(m: Managed, name: str, hasher: Hasher) -> list[Problem]:
    """Offline: the tag's manifest is on disk and every blob matches its name and size."""
    assert m.models_dir is not None
    try:
        man = read_manifest(m.models_dir, name)
    except StoreError as exc:
        return [Problem(model=name, file=str(m.models_dir), expected="manifest on disk", actual=str(exc),
                        kind="missing")]  # fmt: skip
    digests = hasher.hash_many(tag_blob_paths(m.models_dir, man))
    return check_blobs(m.models_dir, man, digests)


# ------------------------------------------------------------------ wait until serving


async def wait_until_serving(
    m: Managed, http: httpx.AsyncClient, *, timeout_s: float, interval_s: float, prompt: str = "test",
    max_tokens: int = 8, expect_digest: str | None = None,
) -> Ready:  # fmt: skip
    """Probe until a complete answer arrives (and Ollama reports the expected digest), or give up."""
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    attempts = 0
    last: ProbeResult | None = None
    err: str | None = None
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ep = m.endpoint.model_copy(
            update={"timeout_s": max(0.5, min(m.endpoint.timeout_s, left)),
                    "connect_timeout_s": max(0.2, min(m.endpoint.connect_timeout_s, left))}
        )  # fmt: skip
        attempts += 1
        last = await measure_probe(ep, prompt=prompt, max_tokens=max_tokens)
        if last.ok:
            served = None
            if m.store == "ollama" and expect_digest:
                try:
                    served = _digest_of(await ollama_digests(m, http), m.endpoint.model)
                except (LLMError, TimeoutError) as exc:
                    err = f"cannot read /api/tags: {exc}"
                    served = None
                if served != expect_digest:
                    err = err or f"serves {served}, expected {expect_digest}"
                else:
                    return Ready(ok=True, seconds=round(time.monotonic() - t0, 3), attempts=attempts,
                                 answer=last.text[:120], digest=served)  # fmt: skip
            else:
                return Ready(ok=True, seconds=round(time.monotonic() - t0, 3), attempts=attempts,
                             answer=last.text[:120])  # fmt: skip
        else:
            err = f"{last.error_kind}: {last.error_detail}"
        await asyncio.sleep(min(interval_s, max(0.0, deadline - time.monotonic())))
    return Ready(ok=False, seconds=round(time.monotonic() - t0, 3), attempts=attempts,
                 last_error=redact(err or "no answer"), answer=last.text[:120] if last else "")  # fmt: skip


# ------------------------------------------------------------------ the switch itself


class SwitchStep(BaseModel):
    """The selector swap and the restart, before any probe (what a rollback hook must undo)."""

    endpoint: str = Field(description="Endpoint name.")
    action: str = Field(description="promote | rollback | auto-rollback.")
    from_version: str | None = Field(default=None, description="Selection before.")
    to_version: str = Field(description="Selection after.")
    from_digest: str | None = Field(default=None, description="Digest before.")
    to_digest: str | None = Field(default=None, description="Digest after.")
    restart: RestartOutcome | None = Field(default=None, description="The restart, when one ran.")
    swap_s: float = Field(default=0.0, description="Seconds to swap.")
    restart_s: float | None = Field(default=None, description="Seconds the restart took.")
    started: float = Field(default=0.0, description="time.monotonic() at the start (same process only).")
    changed: bool = Field(default=True, description="The selector was changed (False: it already was).")
    dry_run: bool = Field(default=False, description="Nothing was changed.")
    detail: str = Field(default="", description="What happened.")


async def switch_to(
    cfg: Config, m: Managed, to: str, http: httpx.AsyncClient, *, action: str, reason: str,
    dry_run: bool = False, extra_budget: int = 0,
) -> SwitchStep:  # fmt: skip
    """Make `to` (a path for files, a tag for Ollama) the active selection and restart if needed.

    Raises SwitchError before changing anything when the switch cannot be made; when the
    restart fails after the swap, the step comes back with restart.decision 'failed' (the
    caller restores the previous selection).
    """
    t0 = time.monotonic()
    if m.store == "ollama":
        try:
            digests = await ollama_digests(m, http)
        except (LLMError, TimeoutError) as exc:
            raise SwitchError(f"{m.name}: cannot list models: {exc}") from None
        to_digest = _digest_of(digests, to)
        if to_digest is None:
            raise SwitchError(f"{m.name}: {to} is not on the server; pull it first")
        alias = m.endpoint.model
        cur = _digest_of(digests, alias)
        step = SwitchStep(endpoint=m.name, action=action, to_version=to, to_digest=to_digest, from_digest=cur,
                          started=t0, dry_run=dry_run)  # fmt: skip
        if cur:
            step.from_version = backup_tag(alias, cur)
        if dry_run:
            step.detail = f"would copy {to} to {alias}" + (f" after keeping {alias} as {step.from_version}"
                                                            if cur else "")  # fmt: skip
            return step
        try:
            if cur and _digest_of(digests, step.from_version or "") is None:
                await ollama_copy(m, http, alias, step.from_version or "")
            if cur == to_digest:
                step.changed = False
            else:
                await ollama_copy(m, http, to, alias)
        except (LLMError, TimeoutError) as exc:
            raise SwitchError(f"{m.name}: /api/copy failed: {exc}") from None
        step.swap_s = round(time.monotonic() - t0, 3)
        pin_ollama_tags(cfg, m, [alias, to] + ([step.from_version] if step.from_version else []))
        step.detail = f"copied {to} to {alias}"
    else:
        target = Path(to)
        if not target.exists():
            raise SwitchError(f"{m.name}: {target} does not exist")
        if not (m.active_link or m.env_file):
            raise SwitchError(f"{m.name}: set active_link or env_file in its [[models.endpoints]] table")
        if not dry_run and needs_restart(cfg, m) and not switch_restart_config(cfg, m).command:
            raise SwitchError(f"{m.name}: no restart command (restart_command or [restart].command): the server "
                              "would keep serving the old file")  # fmt: skip
        cur = read_active(m)
        step = SwitchStep(endpoint=m.name, action=action, from_version=cur, to_version=str(target), started=t0,
                          dry_run=dry_run)  # fmt: skip
        if dry_run:
            cmd = switch_restart_config(cfg, m).command
            step.detail = f"would point {m.active_link or m.env_file} at {target} and run {cmd}"
            return step
        try:
            set_active_path(m, target)
        except ActiveError as exc:
            raise SwitchError(str(exc)) from None
        step.changed = cur != str(target)
        step.swap_s = round(time.monotonic() - t0, 3)
        step.detail = f"{m.active_link or m.env_file} -> {target}"
    r0 = time.monotonic()
    step.restart = restart_for_switch(
        cfg,
        m,
        reason=f"model {action}: {reason}".strip(": "),
        model=to,
        dry_run=False,
        extra_budget=extra_budget,
    )
    if step.restart is not None:
        step.restart_s = round(time.monotonic() - r0, 3)
        step.detail += f"; restart {step.restart.decision}"
    return step


async def undo_switch(
    cfg: Config, m: Managed, step: SwitchStep, http: httpx.AsyncClient, *, reason: str
) -> SwitchResult:
    """Restore the selection a switch replaced, restart, wait until it answers (an automatic rollback)."""
    t0 = time.monotonic()
    if step.from_version is None:
        return SwitchResult(endpoint=m.name, action="auto-rollback", ok=False, to_version=None,
                            detail="nothing to restore: there was no active version before")  # fmt: skip
    try:
        back = await switch_to(cfg, m, step.from_version, http, action="auto-rollback", reason=reason,
                               extra_budget=1)  # fmt: skip
    except SwitchError as exc:
        return SwitchResult(endpoint=m.name, action="auto-rollback", ok=False, to_version=step.from_version,
                            detail=f"restore failed: {exc}")  # fmt: skip
    return await finish_switch(cfg, m, back, http, t0=t0, undoes=None, reason=reason)


async def finish_switch(
    cfg: Config, m: Managed, step: SwitchStep, http: httpx.AsyncClient, *, t0: float, undoes: str | None,
    reason: str,
) -> SwitchResult:  # fmt: skip
    """Probe after a switch and record it in the history."""
    res = SwitchResult(
        endpoint=m.name, action=step.action, ok=False, dry_run=step.dry_run, from_version=step.from_version,
        to_version=step.to_version, from_digest=step.from_digest, to_digest=step.to_digest,
        restart=step.restart, swap_s=step.swap_s, restart_s=step.restart_s, detail=step.detail,
    )  # fmt: skip
    if step.dry_run:
        res.ok = True
        return res
    if step.restart is not None and not step.restart.executed:
        res.detail += f" ({redact(step.restart.output_tail)[:200]})" if step.restart.output_tail else ""
    else:
        r0 = time.monotonic()
        res.ready = await wait_until_serving(
            m, http, timeout_s=cfg.models.probe_timeout_s, interval_s=cfg.models.probe_interval_s,
            prompt=cfg.health.probe_prompt, max_tokens=min(cfg.health.probe_max_tokens, 8),
            expect_digest=step.to_digest if m.store == "ollama" else None,
        )  # fmt: skip
        res.ready_s = round(time.monotonic() - r0, 3)
        res.ok = res.ready.ok
    res.seconds = round(time.monotonic() - t0, 3)
    rec = SwitchRecord(
        endpoint=m.name, action=step.action, from_version=step.from_version, to_version=step.to_version,
        from_digest=step.from_digest, to_digest=step.to_digest, ok=res.ok, undoes=undoes,
        seconds=res.seconds, reason=reason,
    )  # fmt: skip
    append_history(models_state_dir(cfg, m.name), rec)
    res.record_id = rec.id
    return res


async def promote(
    cfg: Config, candidate: str, *, endpoint: str | None = None, dry_run: bool = False, reason: str = "",
    verify: bool = True, expected_sha256: str | None = None, auto_rollback: bool = True,
    hasher: Hasher | None = None,
) -> SwitchResult:  # fmt: skip
    """Verify the candidate, switch to it, probe; undo the switch when the probe fails."""
    m = managed_endpoint(cfg, endpoint)
    own = hasher is None
    h = hasher or Hasher(cfg.models.hash_workers)
    t0 = time.monotonic()
    try:
        if m.store == "files":
            path = resolve_candidate(m, candidate, h, allow_import=not dry_run)
            to = str(path)
            if verify:
                problems = verify_file_version(cfg, m, version_name(m, to) or path.name, h,
                                               expected_sha256=expected_sha256, pin=not dry_run)  # fmt: skip
                if problems:
                    return SwitchResult(endpoint=m.name, action="promote", ok=False, to_version=to,
                                        problems=problems, detail="candidate failed verification; not promoted")  # fmt: skip
        else:
            to = candidate
            if verify and m.models_dir is not None and m.endpoint.host == "local":
                problems = verify_ollama_tag(m, candidate, h)
                if problems:
                    return SwitchResult(endpoint=m.name, action="promote", ok=False, to_version=to,
                                        problems=problems, detail="candidate failed verification; not promoted")  # fmt: skip
    finally:
        if own:
            h.close()
    async with make_http_client() as http:
        step = await switch_to(
            cfg, m, to, http, action="promote", reason=reason or "by hand", dry_run=dry_run
        )
        res = await finish_switch(cfg, m, step, http, t0=t0, undoes=None, reason=reason)
        if not res.ok and not dry_run and auto_rollback:
            back = await undo_switch(cfg, m, step, http, reason=f"promotion of {to} failed: {res.detail}")
            res.rolled_back = back.ok
            res.rollback = back.model_dump(mode="json")
            res.detail += "; rolled back" if back.ok else "; ROLLBACK FAILED"
        elif res.ok and not dry_run:
            try:
                res.pruned = await prune_versions(cfg, m, http)
            except OSError as exc:  # housekeeping: the promotion itself succeeded and must say so
                res.detail += f"; pruning old versions failed: {exc}"
    return res


def rollback_target(cfg: Config, m: Managed) -> tuple[str, SwitchRecord | None]:
    """The version the last promotion replaced (and that promotion, which the rollback undoes)."""
    state = models_state_dir(cfg, m.name)
    stack = promotion_stack(read_history(state))
    current = read_active(m)
    if stack:
        top = stack[-1]
        same = top.to_version == current if m.store == "files" else True
        if same and top.from_version:
            return top.from_version, top
    raise SwitchError(
        f"{m.name}: no earlier version recorded for {current}; name one with --to (a version or a tag)"
    )


async def rollback(
    cfg: Config, *, endpoint: str | None = None, to: str | None = None, dry_run: bool = False, reason: str = "",
) -> SwitchResult:  # fmt: skip
    """Switch back to the previous version (or `to`), restart, probe: the playbook's under-60-s rollback."""
    m = managed_endpoint(cfg, endpoint)
    t0 = time.monotonic()
    undoes = None
    if to is None:
        target, rec = rollback_target(cfg, m)
        undoes = rec.id if rec else None
    else:
        # Only a version this host pinned or switched between: `to` can come from a run parameter.
        try:
            target = allowed_rollback_target(cfg, m, to)
        except ParameterRefused as exc:
            raise SwitchError(str(exc)) from None
    async with make_http_client() as http:
        step = await switch_to(cfg, m, target, http, action="rollback", reason=reason or "by hand",
                               dry_run=dry_run, extra_budget=1)  # fmt: skip
        res = await finish_switch(cfg, m, step, http, t0=t0, undoes=undoes, reason=reason)
    return res


async def prune_versions(cfg: Config, m: Managed, http: httpx.AsyncClient) -> list[str]:
    """Remove versions llm-upkeep switched away from, beyond keep_versions (never the active or the
    previous one, never a version it did not switch between)."""
    hist = read_history(models_state_dir(cfg, m.name))
    keep = cfg.models.keep_versions
    removed: list[str] = []
    if m.store == "files":
        active = read_active(m)
        order = recent_versions(hist, active)
        names = []
        for v in order:
            n = version_name(m, v)
            if n and n not in names:
                names.append(n)
        assert m.versions_dir is not None
        for n in names[keep:]:
            if os.sep in n or n in ("", ".", ".."):
                continue  # a version outside versions_dir (the server's original file): not ours to delete
            p = m.versions_dir / n
            if not p.exists() or p.is_symlink() or version_name(m, active) == n:
                continue
            trash = m.versions_dir / f".{n}.{os.getpid()}.removing"
            os.replace(p, trash)  # gone from view atomically, then deleted
            if trash.is_dir():
                shutil.rmtree(trash)
            else:
                trash.unlink()
            removed.append(str(p))

        def drop(lock: Lock) -> None:
            ep = lock.endpoints.get(m.name)
            if ep:
                ep.versions = [v for v in ep.versions if str(m.versions_dir / v.name) not in removed]

        if removed:
            update_lock(lock_path(cfg), drop)
        return removed
    try:
        digests = await ollama_digests(m, http)
    except (LLMError, TimeoutError):
        return []
    alias = m.endpoint.model
    repo = parse_model_name(alias).repo
    recent: list[str] = []
    cur = _digest_of(digests, alias)
    if cur:
        recent.append(cur)
    for r in reversed(hist):
        for d in (r.to_digest, r.from_digest):
            if d and d not in recent:
                recent.append(d)
    keep_digests = set(recent[:keep])
    client = OllamaClient(m.endpoint, http)
    for name, d in digests.items():
        n = parse_model_name(name)
        if n.repo == repo and n.tag.startswith(BACKUP_PREFIX) and d not in keep_digests:
            try:
                async with asyncio.timeout(API_TIMEOUT_S):
                    if await client.delete(name):
                        removed.append(name)
            except (LLMError, TimeoutError):
                continue  # pruning is housekeeping; a failure leaves an extra version, never fewer

    def drop_tags(lock: Lock) -> None:
        ep = lock.endpoints.get(m.name)
        if ep:
            gone = {parse_model_name(x) for x in removed}
            ep.tags = [t for t in ep.tags if parse_model_name(t.name) not in gone]

    if removed:
        update_lock(lock_path(cfg), drop_tags)
    return removed


def promote_model(cfg: Config, candidate: str, **kw) -> SwitchResult:
    """Sync entry point of :func:`promote` (CLI)."""
    return run_sync(promote(cfg, candidate, **kw))


def rollback_model(cfg: Config, **kw) -> SwitchResult:
    """Sync entry point of :func:`rollback` (CLI)."""
    return run_sync(rollback(cfg, **kw))
