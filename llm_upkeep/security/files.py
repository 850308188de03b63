"""File permissions: model stores anyone can write, config files whose secrets anyone can read,
prompt templates anyone can change. Only stat() and reads; never chmod.
"""

from __future__ import annotations

import glob
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from llm_upkeep.security.findings import Finding

MAX_READ = 1024 * 1024

# key = value pairs whose key names a secret (TOML, INI, env files, YAML, JSON).
_KEY_VALUE = re.compile(
    r"""(?ix)
    ["']?(?P<key>[A-Za-z0-9_.-]*(?:api[_-]?key|apikey|token|secret|passw(?:or)?d|passphrase|webhook|
        credential|private[_-]?key|access[_-]?key|auth)[A-Za-z0-9_.-]*)["']?
    \s*[:=]\s*
    ["']?(?P<value>[^\s"'#,}\]]+)
    """
)
# Well-known secret shapes, whatever the key is called.
_SHAPES = [
    ("OpenAI-style key", re.compile(r"\bsk-[A-Za-z0-9_-]{16,}")),
    ("Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{8,}")),
    (
        "Slack webhook",
        re.compile(r"hooks\.slack\.com/services/T[A-Za-z0-9_-]+/B[A-Za-z0-9_-]+/[A-Za-z0-9_-]+"),
    ),
    ("AWS access key", re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")),
    ("GitHub token", re.compile(r"\b(?:ghp|gho|ghs|ghu)_[A-Za-z0-9]{30,}|\bgithub_pat_[A-Za-z0-9_]{40,}")),
    ("Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{30,}")),
    ("private key", re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")),
]
_NOT_SECRET_KEYS = re.compile(
    r"(?i)(_env|_file|_path|_url_env|_name|_id|_header|_type|_length|_ttl|_timeout)$"
)
_PLACEHOLDER = re.compile(
    r"(?i)^(\$\{?[A-Z_][A-Z0-9_]*\}?|<.*>|%\(.*|\{\{.*|true|false|null|none|yes|no|\*+|x+|\.\.\.|-)$"
)


@dataclass
class SecretHit:
    line: int
    what: str  # the key name or the shape's name; never the value
    length: int


def find_secrets(text: str) -> list[SecretHit]:
    """Secret-looking values in a config text: named keys with real values, and known token shapes."""
    hits: list[SecretHit] = []
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith(("#", ";", "//")):
            continue
        seen = False
        for m in _KEY_VALUE.finditer(s):
            key, value = m.group("key"), m.group("value")
            if _NOT_SECRET_KEYS.search(key) or _PLACEHOLDER.match(value) or len(value) < 6:
                continue
            if value.isdigit():
                continue
            hits.append(SecretHit(n, key, len(value)))
            seen = True
        if not seen:
            for name, pat in _SHAPES:
                m = pat.search(s)
                if m:
                    hits.append(SecretHit(n, name, len(m.group(0))))
                    break
    return hits


def mode_str(st: os.stat_result) -> str:
    return f"{stat.S_IMODE(st.st_mode):04o}"


def _expand(patterns: list[str]) -> tuple[list[Path], list[str]]:
    paths: list[Path] = []
    missing: list[str] = []
    for pat in patterns:
        pat = os.path.expanduser(pat)
        found = sorted(glob.glob(pat)) if glob.has_magic(pat) else ([pat] if os.path.lexists(pat) else [])
        if not found:
            missing.append(pat)
        paths += [Path(p) for p in found]
    return paths, missing


def _walk(root: Path, limit: int):
    """(path, lstat) of root and everything under it, symlinks not followed, at most `limit` entries."""
    n = 0
    try:
        yield root, root.lstat()
    except OSError:
        return
    if not root.is_dir() or root.is_symlink():
        return
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            try:
                st = p.lstat()
            except OSError:
                continue
            n += 1
            if n > limit:
                return
            yield p, st


def _world_writable(st: os.stat_result) -> bool:
    if stat.S_ISLNK(st.st_mode):
        return False
    if stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX:
        return False  # sticky dirs (/tmp style): others cannot replace our files
    return bool(st.st_mode & stat.S_IWOTH)


def check_config_files(paths: list[str]) -> tuple[list[Finding], list[str]]:
    """Config files holding secrets that every user can read, or that every user can change."""
    findings: list[Finding] = []
    files, missing = _expand(paths)
    notes = [f"config file not found: {m}" for m in missing]
    for p in files:
        if p.is_dir():
            notes.append(f"{p}: a directory; list config files or a glob")
            continue
        try:
            st = p.stat()
            with open(p, "rb") as f:
                raw = f.read(MAX_READ)
        except OSError as exc:
            notes.append(f"{p}: cannot read: {exc.strerror}")
            continue
        if b"\x00" in raw[:4096]:
            notes.append(f"{p}: binary, not examined for secrets")
            hits = []
        else:
            hits = find_secrets(raw.decode("utf-8", errors="replace"))
        mode = mode_str(st)
        if hits and st.st_mode & stat.S_IROTH:
            ev = [f"{p}: mode {mode} (owner uid {st.st_uid}): readable by every user"]
            ev += _capped([f"{p}:{h.line}: {h.what} = <{h.length} characters, not shown>" for h in hits])
            findings.append(Finding(
                id=f"files.secret-readable:{p}", category="files", severity="high",
                title=f"{p} holds {len(hits)} secret-looking value(s) and every user can read it",
                target=str(p), evidence=ev,
                fix=f"chmod 600 {p} (or 640 with a dedicated group), rotate the exposed secrets, and keep "
                "secrets in environment variables or a secrets manager (llm-upkeep reads them via *_env keys).",
            ))  # fmt: skip
        if _world_writable(st):
            findings.append(Finding(
                id=f"files.config-writable:{p}", category="files", severity="high",
                title=f"{p}: every user can change this config file",
                target=str(p), evidence=[f"{p}: mode {mode} (owner uid {st.st_uid})"],
                fix=f"chmod o-w {p}",
            ))  # fmt: skip
    return findings, notes


def _capped(lines: list[str], n: int = 10) -> list[str]:
    """Evidence stays readable: the first n lines and a count of the rest."""
    return lines[:n] + ([f"... and {len(lines) - n} more"] if len(lines) > n else [])


def check_tree(paths: list[str], *, kind: str, limit: int) -> tuple[list[Finding], list[str]]:
    """World-writable files or dirs under model stores (kind='model') or prompt templates (kind='prompt')."""
    findings: list[Finding] = []
    roots, missing = _expand(paths)
    notes = [f"{kind} path not found: {m}" for m in missing]
    for root in roots:
        bad: list[str] = []
        count = 0
        for p, st in _walk(root, limit):
            count += 1
            if _world_writable(st):
                bad.append(f"{p}: mode {mode_str(st)}{' (dir)' if stat.S_ISDIR(st.st_mode) else ''}")
        if count > limit:
            notes.append(f"{root}: stopped after {limit} entries (security.max_files_per_dir)")
        notes.append(f"{root}: {count} entries examined")
        if not bad:
            continue
        ev = _capped(bad)
        if kind == "model":
            findings.append(Finding(
                id=f"files.model-writable:{root}", category="files", severity="high",
                title=f"{root}: {len(bad)} model file(s)/dir(s) every user can write (model tampering)",
                target=str(root), evidence=ev,
                fix=f"chmod -R o-w {root}; models should be writable only by the serving account "
                "(verify checksums after fixing: a writable model may already be altered).",
            ))  # fmt: skip
        else:
            findings.append(Finding(
                id=f"files.prompt-writable:{root}", category="files", severity="medium",
                title=f"{root}: {len(bad)} prompt template file(s)/dir(s) every user can change",
                target=str(root), evidence=ev,
                fix=f"chmod -R o-w {root}; prompt templates steer every answer and should be changed only "
                "through review.",
            ))  # fmt: skip
    return findings, notes
