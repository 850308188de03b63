"""Update discovery: newer tags or quantizations of each pinned model family, not only a moved tag.

Ollama: the registry's tag list of the pinned repository (``GET /v2/<ns>/<model>/tags/list``, the
distribution API); the tags of the same size (``8b`` for ``llama3:8b``) other than the pinned one
are its variants: other quantizations (``8b-instruct-q8_0``), newer instruct builds. Hugging Face:
the publisher's other repositories of the same size (``GET /api/models?author=<org>&search=<size>``),
e.g. the ``-GGUF`` / ``-AWQ`` quantizations or a newer release. Each is listed as a candidate with
the command that evaluates it; nothing is pulled or downloaded (metadata requests only).
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

import httpx
from pydantic import BaseModel, Field

from llm_upkeep.configbase import resolve_secret
from llm_upkeep.redact import redact
from llm_upkeep.review.config import PinnedModel, ReviewConfig
from llm_upkeep.review.updates import RegistryError, _get, parse_ollama_name

_SIZE = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?x?\d*[bm])(?![a-z])", re.I)
_QUANT = re.compile(r"(q\d(?:_[a-z0-9]+)*|fp16|f16|bf16|int[48]|gguf|awq|gptq|exl2|mlx|fp8)", re.I)


class Candidate(BaseModel):
    family: str = Field(description="The pinned model this is a candidate for.")
    source: str = Field(description="ollama or hf.")
    name: str = Field(description="Ollama name:tag or Hugging Face repo id.")
    why: str = Field(description="What makes it a candidate (quantization, variant, sibling repo).")
    command: str = Field(description="What evaluates it (never run by the review).")


def size_token(name: str) -> str | None:
    m = _SIZE.search(name)
    return m.group(1).lower() if m else None


def _why(name: str) -> str:
    q = _QUANT.findall(name)
    return f"quantization {', '.join(sorted({x.lower() for x in q}))}" if q else "variant of the same size"


def ollama_candidates(p: PinnedModel, cfg: ReviewConfig, http: httpx.Client) -> list[Candidate]:
    ns, model, tag = parse_ollama_name(p.name, p.ref)
    _r, body = _get(
        http, f"{cfg.ollama_registry_url}/v2/{ns}/{model}/tags/list", {"Accept": "application/json"}
    )
    try:
        tags = json.loads(body).get("tags")
    except (ValueError, AttributeError, RecursionError):
        raise RegistryError("malformed tag list (not a JSON object)") from None
    if not isinstance(tags, list):
        raise RegistryError("malformed tag list (no 'tags' list)")
    size = size_token(tag)
    prefix = "" if ns == "library" else f"{ns}/"
    out = []
    for t in sorted({t for t in tags if isinstance(t, str)}):
        if t in (tag, "latest") or (size and size_token(t) != size):
            continue
        name = f"{prefix}{model}:{t}"
        out.append(Candidate(family=p.name, source="ollama", name=name, why=_why(t),
                             command=f"llm-upkeep run evaluate-model {name}"))  # fmt: skip
    return out[: cfg.max_candidates]


def hf_candidates(p: PinnedModel, cfg: ReviewConfig, http: httpx.Client) -> list[Candidate]:
    if "/" not in p.name:
        return []
    org, repo = p.name.split("/", 1)
    size = size_token(repo.replace("-", " ").replace("_", " "))
    query = urlencode({"author": org, "search": size or repo.split("-")[0], "limit": 100})
    headers = {"Accept": "application/json"}
    token = resolve_secret(cfg.hf_token_env, key="review.hf_token_env", required=False)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    _r, body = _get(http, f"{cfg.hf_endpoint}/api/models?{query}", headers)
    try:
        rows = json.loads(body)
    except (ValueError, RecursionError):
        raise RegistryError("malformed model list (not JSON)") from None
    if not isinstance(rows, list):
        raise RegistryError("malformed model list (not a list)")
    out = []
    for row in rows:
        rid = row.get("id") or row.get("modelId") if isinstance(row, dict) else None
        if not isinstance(rid, str) or rid == p.name or not rid.startswith(org + "/"):
            continue
        if size and size_token(rid.split("/", 1)[1].replace("-", " ").replace("_", " ")) != size:
            continue
        local = rid.split("/", 1)[1]
        out.append(Candidate(
            family=p.name, source="hf", name=rid, why=_why(local) if _QUANT.search(local) else "sibling repository",
            command=f"huggingface-cli download {rid} --local-dir <versions_dir>/{local} && "
                    f"llm-upkeep run evaluate-model {local}",
        ))  # fmt: skip
    return sorted(out, key=lambda c: c.name)[: cfg.max_candidates]


def discover_candidates(
    pinned: list[PinnedModel], cfg: ReviewConfig, http: httpx.Client
) -> tuple[list[Candidate], list[str]]:
    """(candidates, notes): one registry failure is a note for that family, never the review's failure."""
    cands: list[Candidate] = []
    notes: list[str] = []
    seen: set[str] = set()
    for p in pinned:
        fam = p.name.split(":")[0] if p.source == "ollama" else p.name
        if fam in seen:
            continue
        seen.add(fam)
        try:
            cands += ollama_candidates(p, cfg, http) if p.source == "ollama" else hf_candidates(p, cfg, http)
        except (RegistryError, ValueError) as e:
            notes.append(redact(f"{p.name}: candidates not listed: {e}")[:300])
    return cands, notes
