"""Answer checks: does an answer do the job its prompt asked for?

Deterministic checks (exact, contains, regex, json, numeric) grade one answer on its own. The
similarity check compares an answer with the baseline's answer to the same prompt: cosine
similarity of the server's own embeddings (Ollama /api/embed, OpenAI /v1/embeddings), or, when
the server has no embeddings, a lexical cosine (see :func:`lexical_similarity`).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from jsonschema import Draft202012Validator

from llm_upkeep.bench.suites import (
    ContainsCheck,
    ExactCheck,
    JsonCheck,
    NumericCheck,
    PromptSpec,
    RegexCheck,
    SimilarityCheck,
    compile_regex,
)
from llm_upkeep.clients.errors import short_detail


@dataclass
class CheckOutcome:
    """One check on one answer. passed None = not evaluated (e.g. similarity without a baseline)."""

    name: str
    type: str
    passed: bool | None
    score: float | None = None
    detail: str = ""
    method: str | None = None

    def to_dict(self) -> dict:
        return {
            "name": self.name, "type": self.type, "passed": self.passed, "score": self.score,
            "detail": self.detail, "method": self.method,
        }  # fmt: skip


_QUOTES = "\"'`*_“”‘’«» \t\r\n"


def normalize_text(text: str) -> str:
    """Casefold, NFKC, collapse whitespace, strip surrounding quotes/markdown and trailing . ! ;"""
    s = unicodedata.normalize("NFKC", text or "").casefold()
    s = " ".join(s.split())
    prev = None
    while prev != s:
        prev = s
        s = s.strip(_QUOTES).rstrip(".!;:").strip(_QUOTES)
    return s


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", unicodedata.normalize("NFKC", text or "").casefold())


def lexical_similarity(a: str, b: str) -> float:
    """Cosine of word unigram + bigram count vectors (0 = nothing shared, 1 = same words in same order).

    Why this fallback: it needs no model, is symmetric and bounded, and drops quickly when an
    answer changes its facts or structure, while ignoring case, punctuation and spacing.
    """
    wa, wb = _words(a), _words(b)
    if not wa and not wb:
        return 1.0
    if not wa or not wb:
        return 0.0
    ca = Counter(wa) + Counter(f"{x} {y}" for x, y in zip(wa, wa[1:], strict=False))
    cb = Counter(wb) + Counter(f"{x} {y}" for x, y in zip(wb, wb[1:], strict=False))
    dot = sum(v * cb.get(k, 0) for k, v in ca.items())
    na = math.sqrt(sum(v * v for v in ca.values()))
    nb = math.sqrt(sum(v * v for v in cb.values()))
    return dot / (na * nb)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    if len(a) != len(b) or not a:
        raise ValueError("embeddings of different or zero length")
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    if na == 0 or nb == 0:
        return 0.0
    return max(-1.0, min(1.0, dot / (na * nb)))


def extract_json(text: str) -> object:
    """The answer as JSON: the whole text, else a ```json fence, else the first parseable {...} / [...]."""
    s = (text or "").strip()
    try:
        return json.loads(s)
    except ValueError:
        pass
    m = re.search(r"```(?:json)?\s*\n?(.*?)```", s, re.DOTALL | re.IGNORECASE)
    if m:
        try:
            return json.loads(m.group(1).strip())
        except ValueError:
            pass
    dec = json.JSONDecoder()
    for i, ch in enumerate(s):
        if ch in "{[":
            try:
                obj, _ = dec.raw_decode(s, i)
                return obj
            except ValueError:
                continue
    raise ValueError("no JSON value found in the answer")


_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


def extract_number(text: str, pattern: str | None = None) -> float:
    if pattern:
        m = compile_regex(pattern, "").search(text or "")
        if not m:
            raise ValueError("pattern did not match")
        raw = m.group(1)
    else:
        m = _NUMBER.search(text or "")
        if not m:
            raise ValueError("no number in the answer")
        raw = m.group(0)
    try:
        return float(raw.replace(",", "").strip())
    except ValueError:
        raise ValueError(f"not a number: {raw[:40]!r}") from None


def _clip(s: str, n: int = 60) -> str:
    s = " ".join((s or "").split())
    return s if len(s) <= n else s[: n - 3] + "..."


def grade_static(check, name: str, answer: str) -> CheckOutcome:
    """Every check except similarity; never raises for a bad answer."""
    t = check.type
    if isinstance(check, ExactCheck):
        want = [check.value] if isinstance(check.value, str) else list(check.value)
        got = normalize_text(answer)
        ok = got in {normalize_text(w) for w in want}
        return CheckOutcome(name, t, ok, detail="" if ok else f"got {_clip(got)!r}, want {want!r}")
    if isinstance(check, ContainsCheck):
        want = [check.value] if isinstance(check.value, str) else list(check.value)
        hay = " ".join((answer or "").split())
        if not check.case_sensitive:
            hay = hay.casefold()
        found = [
            w
            for w in want
            if (" ".join(w.split()) if check.case_sensitive else " ".join(w.split()).casefold()) in hay
        ]
        hit = len(found) == len(want) if check.mode == "all" else bool(found)
        ok = hit != check.negate
        if ok:
            return CheckOutcome(name, t, True)
        if check.negate:
            return CheckOutcome(name, t, False, detail=f"must not contain {found!r}")
        missing = [w for w in want if w not in found]
        return CheckOutcome(
            name, t, False, detail=f"missing {missing!r}" if check.mode == "all" else f"none of {want!r}"
        )
    if isinstance(check, RegexCheck):
        hit = compile_regex(check.pattern, check.flags).search(answer or "") is not None
        ok = hit != check.negate
        detail = (
            ""
            if ok
            else (f"matches /{check.pattern}/" if check.negate else f"no match for /{check.pattern}/")
        )
        return CheckOutcome(name, t, ok, detail=detail)
    if isinstance(check, JsonCheck):
        try:
            obj = extract_json(answer)
        except ValueError as exc:
            return CheckOutcome(name, t, False, detail=str(exc))
        if check.json_schema is None:
            return CheckOutcome(name, t, True)
        errors = sorted(Draft202012Validator(check.json_schema).iter_errors(obj), key=lambda e: list(e.path))
        if not errors:
            return CheckOutcome(name, t, True)
        e = errors[0]
        where = "/".join(str(p) for p in e.path) or "(root)"
        return CheckOutcome(name, t, False, detail=short_detail(f"schema: at {where}: {e.message}", 200))
    if isinstance(check, NumericCheck):
        try:
            x = extract_number(answer, check.pattern)
        except ValueError as exc:
            return CheckOutcome(name, t, False, detail=str(exc))
        allowed = max(check.tolerance, check.rel_tolerance * abs(check.value))
        ok = abs(x - check.value) <= allowed + 1e-12
        return CheckOutcome(
            name, t, ok, score=x, detail="" if ok else f"got {x:g}, want {check.value:g} ± {allowed:g}"
        )
    raise TypeError(f"not a static check: {t}")


@dataclass
class AnswerGrade:
    """All check outcomes of one answer; similarity outcomes are filled in by the grader later."""

    outcomes: list[CheckOutcome] = field(default_factory=list)

    @property
    def evaluated(self) -> list[CheckOutcome]:
        return [o for o in self.outcomes if o.passed is not None]

    @property
    def passed(self) -> bool | None:
        ev = self.evaluated
        return None if not ev else all(o.passed for o in ev)


def grade_answer(prompt: PromptSpec, answer: str) -> AnswerGrade:
    """Static checks graded now; similarity checks left pending (passed None) for grade_similarity."""
    g = AnswerGrade()
    for check, name in zip(prompt.checks, prompt.check_names(), strict=True):
        if isinstance(check, SimilarityCheck):
            g.outcomes.append(CheckOutcome(name, "similarity", None, detail="no baseline answer"))
        else:
            g.outcomes.append(grade_static(check, name, answer))
    return g


def similarity_outcome(check: SimilarityCheck, name: str, score: float, method: str) -> CheckOutcome:
    floor = (
        check.min
        if method == "embeddings"
        else (check.min_lexical if check.min_lexical is not None else check.min)
    )
    ok = score >= floor
    return CheckOutcome(
        name, "similarity", ok, score=round(score, 4), method=method,
        detail="" if ok else f"{method} similarity {score:.3f} < {floor:g} to the baseline answer",
    )  # fmt: skip
