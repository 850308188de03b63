"""Is this model output gibberish? A score from the text alone, plus a canary with a known answer.

Why text alone: when a model file is corrupted the server still answers 200 with a well-formed
stream; only the words are wrong. Each component looks for one way broken output differs from
language, and maps its measure to 0..1 between "normal text has this" and "only noise has this":

- bad_chars: replacement characters (U+FFFD), control and zero-width characters, raw tokenizer
  pieces that leaked into the text (``<0x0A>``, ``<unk>``, ``\u2581``, ``\u0120``);
- script_mix: words that mix writing systems (Latin + Cyrillic + Han in one word) or carry
  mojibake (UTF-8 read as Latin-1: ``Ã¤``);
- repetition: the same few words looping, and a zlib compression ratio far below language's;
- word_salad: the share of words that are not words (a small shipped word list, suffixes
  stripped) and of capitals in mid-sentence, discounted when the text is code-like (symbols) or
  full of another language's function words. A random-weights model writes exactly this: pieces
  of real words, capitalised at random, with no sentence around them.

Short answers ("Paris.", "42") carry too little text to judge and score 0 on the word-based
components; the canary covers them: a known question whose answer must contain the expected text.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from dataclasses import dataclass, field
from functools import lru_cache

from llm_upkeep.runbook.words import ENGLISH, STOPWORDS, TECH, TECH_MORE

DEFAULT_THRESHOLD = 0.5

# Pieces a tokenizer uses internally; in decoded text they mean the decoding went wrong.
_ARTIFACTS = re.compile(r"<0x[0-9A-Fa-f]{2}>|<unk>|</?s>|<\|[a-z_]{2,30}\|>|[\u2581\u0120\u010a]")
# UTF-8 bytes shown as Latin-1/cp1252 ("Ã¤", "Ð½", "â€™") or as GPT-2 byte symbols ("ðŁĺ").
_MOJIBAKE = re.compile(
    r"[\u00c2-\u00f4][\u0080-\u00bf\u0100-\u0143\u0152-\u0178\u02c6\u02dc\u2013-\u203a\u2122]"
)
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)?")
_CAMEL = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
_ASCII_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
# What may precede a capitalised word without it being a mid-sentence capital.
_BOUNDARY = re.compile(r"(?:^|[.!?:;,\n\"'()\[\]{}/>*#=|\-\u2022`])\s*$")
_SUFFIXES = ("'s", "ies", "ied", "ing", "ed", "es", "s", "ly", "er", "ers", "est", "ment", "ness", "ion",
             "ions", "able", "al", "ity", "ful")  # fmt: skip


@lru_cache(maxsize=1)
def _vocab() -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    stop = {lang: frozenset(words.split()) for lang, words in STOPWORDS.items()}
    vocab = set(ENGLISH.split()) | set(TECH.split()) | set(TECH_MORE.split())
    for words in stop.values():
        vocab |= words
    return frozenset(vocab), stop


def is_known_word(word: str) -> bool:
    """In the word list, directly or after stripping a common English suffix."""
    vocab, _ = _vocab()
    w = word.lower().replace("\u2019", "'")
    if w in vocab:
        return True
    for suf in _SUFFIXES:
        if w.endswith(suf) and len(w) - len(suf) >= 2:
            base = w[: -len(suf)]
            if base in vocab or base + "e" in vocab:
                return True
            if suf in ("ies", "ied") and base + "y" in vocab:
                return True
            if len(base) > 2 and base[-1] == base[-2] and base[:-1] in vocab:  # stopped, running
                return True
    return w.isalpha() and _is_compound(w)


def _is_compound(word: str) -> bool:
    """'setfirstweekday', 'filename': two to four known words of three letters or more, glued."""
    w = word.lower()
    if len(w) < 7:
        return False
    vocab, _ = _vocab()
    best = [0] + [99] * len(w)  # fewest parts covering w[:i]
    for i in range(3, len(w) + 1):
        for j in range(0, i - 2):
            if best[j] < 4 and w[j:i] in vocab:
                best[i] = min(best[i], best[j] + 1)
    return 2 <= best[len(w)] <= 4


def _stopword_share(lower: list[str], stop: dict[str, frozenset[str]]) -> float:
    """Best language's share of function words; one word looping ("or or or") counts only so often."""
    if not lower:
        return 0.0
    cap = max(2, len(lower) // 10)
    best = 0.0
    for words in stop.values():
        seen: dict[str, int] = {}
        for w in lower:
            if w in words:
                seen[w] = min(cap, seen.get(w, 0) + 1)
        best = max(best, sum(seen.values()) / len(lower))
    return best


def _ramp(x: float, lo: float, hi: float) -> float:
    """0 at lo, 1 at hi, linear between (hi < lo inverts)."""
    if hi == lo:
        return 1.0 if x >= hi else 0.0
    return max(0.0, min(1.0, (x - lo) / (hi - lo)))


def _script(ch: str) -> str | None:
    """Coarse writing system of a letter; Han, kana and hangul count as one (Japanese mixes them)."""
    o = ord(ch)
    if o < 0x250 or 0x1E00 <= o <= 0x1EFF:
        return "latin"
    if 0x370 <= o <= 0x3FF:
        return "greek"
    if 0x400 <= o <= 0x52F:
        return "cyrillic"
    if 0x590 <= o <= 0x5FF:
        return "hebrew"
    if 0x600 <= o <= 0x6FF or 0x750 <= o <= 0x77F:
        return "arabic"
    if 0x900 <= o <= 0x97F:
        return "devanagari"
    if 0xE00 <= o <= 0xE7F:
        return "thai"
    if 0x3040 <= o <= 0x30FF or 0x3400 <= o <= 0x9FFF or 0xAC00 <= o <= 0xD7AF or 0xF900 <= o <= 0xFAFF:
        return "cjk"
    return "other"


def _is_bad_char(ch: str) -> bool:
    if ch in "\n\r\t":
        return False
    if ch == "\ufffd":
        return True
    cat = unicodedata.category(ch)
    if cat in ("Cc", "Cs", "Co", "Cn"):
        return True
    return cat == "Cf" and ch not in "\u200d\u200c\u00ad"  # ZWJ/ZWNJ/soft hyphen are legitimate


@dataclass
class GibberishScore:
    """The score (0 clean .. 1 noise), each component, and what drove it."""

    score: float
    components: dict[str, float] = field(default_factory=dict)
    measures: dict[str, float] = field(default_factory=dict)
    words: int = 0

    def is_gibberish(self, threshold: float = DEFAULT_THRESHOLD) -> bool:
        return self.score >= threshold

    def explain(self) -> str:
        top = sorted(self.components.items(), key=lambda kv: -kv[1])
        parts = [f"{k} {v:.2f}" for k, v in top if v > 0]
        m = self.measures
        detail = (
            f"unknown words {m.get('unknown_share', 0):.0%}, mid-sentence capitals "
            f"{m.get('mid_capitals', 0):.0%}, bad chars {m.get('bad_char_ratio', 0):.1%}, "
            f"zlib ratio {m.get('compression_ratio', 1):.2f}"
        )
        return f"score {self.score:.2f} ({', '.join(parts) or 'no component'}); {detail}; {self.words} words"


def _words(text: str):
    """(word, start offset, is identifier part): camelCase is split so identifiers are judged by
    their parts; a part is lower-cased when the whole is an identifier (its capitals are syntax)."""
    for m in _WORD.finditer(text):
        w = m.group()
        s, e = m.start(), m.end()
        glued = (s > 0 and (text[s - 1].isalnum() or text[s - 1] == "_")) or (
            e < len(text) and (text[e].isalnum() or text[e] == "_")
        )  # IPv4Address, snake_case, x86: parts of one identifier
        if re.search(r"[a-z][A-Z]", w) and w.isascii():
            parts = list(_CAMEL.finditer(w))
            ident = glued or (len(parts) >= 2 and all(len(p.group()) >= 2 for p in parts))
            for part in parts:
                yield part.group(), s + part.start(), ident
        else:
            yield w, s, glued


def score_gibberish(text: str) -> GibberishScore:
    """Score one answer; pure, fast (a few microseconds per word), no model needed."""
    text = text or ""
    nonspace = [c for c in text if not c.isspace()]
    n_chars = len(nonspace)
    if n_chars == 0:
        return GibberishScore(score=0.0, measures={"chars": 0})

    # bad characters and leaked tokenizer pieces
    bad = sum(1 for c in nonspace if _is_bad_char(c))
    bad += sum(len(m.group()) for m in _ARTIFACTS.finditer(text))
    bad_ratio = bad / n_chars
    c_bad = _ramp(bad_ratio, 0.01, 0.06) if bad >= 2 else 0.0

    # script mixing inside one whitespace-delimited chunk, and mojibake
    chunks = text.split()
    mixed = 0
    for ch in chunks:
        scripts = {_script(c) for c in ch if c.isalpha()}
        scripts.discard("other")
        if len(scripts) >= 2 or _MOJIBAKE.search(ch):
            mixed += 1
    mix_share = mixed / len(chunks) if chunks else 0.0
    c_mix = _ramp(mix_share, 0.05, 0.25) if mixed >= 2 else 0.0

    words = list(_words(text))
    lower = [w.lower() for w, _, _ in words]

    # repetition: tokens inside trigrams seen three or more times; zlib on long texts
    rep_share = 0.0
    longer = [w for w in lower if len(w) > 1]  # one-letter tokens (x, j, escapes) repeat in code
    if len(longer) >= 12:
        grams = [tuple(longer[i : i + 3]) for i in range(len(longer) - 2)]
        counts: dict[tuple, int] = {}
        for g in grams:
            counts[g] = counts.get(g, 0) + 1
        covered = set()
        for i, g in enumerate(grams):
            if counts[g] >= 3:
                covered.update((i, i + 1, i + 2))
        rep_share = len(covered) / len(longer)
    run = longest = 1 if longer else 0
    for a, b in zip(longer, longer[1:], strict=False):
        run = run + 1 if a == b else 1
        longest = max(longest, run)
    raw = text.encode("utf-8", "surrogatepass")
    zratio = len(zlib.compress(raw, 9)) / len(raw)
    c_rep = max(
        _ramp(rep_share, 0.6, 0.9),
        _ramp(longest, 3, 6),
        _ramp(zratio, 0.3, 0.15) if len(raw) >= 200 else 0.0,
    )

    # word salad: unknown words and mid-sentence capitals, in text that is neither code nor
    # another language's sentences
    _, stop = _vocab()
    stop_share = _stopword_share(lower, stop)
    symbols = sum(1 for c in nonspace if not c.isalnum()) / n_chars
    unknown = judged = 0.0
    mid_caps = 0.0
    for w, off, ident in words:
        if len(w) < 2 or not _ASCII_WORD.fullmatch(w):
            continue  # one letter, or letters outside English's alphabet: not the list's business
        if w.isupper() and len(w) > 2:
            continue  # acronyms
        cap = w[0].isupper() and not ident
        if cap and _BOUNDARY.search(text[max(0, off - 3) : off]):
            continue  # sentence or item start: a capital is expected
        weight = 0.5 if cap else 1.0  # a capital mid-sentence may be a name
        known = is_known_word(w)
        judged += weight
        if not known:
            unknown += weight
        if cap:  # Title Case of real words is a heading style; capitalised fragments are noise
            mid_caps += 1.0
    unknown_share = unknown / judged if judged else 0.0
    mid_cap_share = mid_caps / len(words) if words else 0.0
    language = _ramp(stop_share, 0.25, 0.4)  # sentences of some language
    code = _ramp(symbols, 0.08, 0.18)  # identifiers are allowed not to be words
    c_words = c_case = 0.0
    if judged >= 8:
        c_words = _ramp(unknown_share * (1 - language) * (1 - 0.6 * code), 0.2, 0.45)
    if len(words) >= 6:
        c_case = _ramp(mid_cap_share * (1 - language) * (1 - code), 0.1, 0.3)
    c_salad = min(1.0, 0.6 * c_words + 0.6 * c_case)

    components = {
        "bad_chars": round(c_bad, 3),
        "script_mix": round(c_mix, 3),
        "repetition": round(c_rep, 3),
        "word_salad": round(c_salad, 3),
    }
    measures = {
        "chars": n_chars,
        "bad_char_ratio": round(bad_ratio, 4),
        "mixed_script_share": round(mix_share, 3),
        "repeated_trigram_share": round(rep_share, 3),
        "longest_word_run": longest,
        "compression_ratio": round(zratio, 3),
        "unknown_share": round(unknown_share, 3),
        "mid_capitals": round(mid_cap_share, 3),
        "stopword_share": round(stop_share, 3),
        "symbol_share": round(symbols, 3),
    }
    return GibberishScore(
        score=round(max(components.values()), 3), components=components, measures=measures, words=len(words)
    )


def check_canary(answer: str, expected: list[str]) -> bool:
    """The answer contains one of the expected strings (case and accents folded, word-bounded)."""

    def fold(s: str) -> str:
        s = unicodedata.normalize("NFKD", s.casefold())
        return "".join(c for c in s if not unicodedata.combining(c))

    a = fold(answer or "")
    return any(re.search(rf"(?<!\w){re.escape(fold(e))}(?!\w)", a) for e in expected if e.strip())
