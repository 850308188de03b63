"""The gibberish score: precision and recall on the labelled samples (real random-weights output
from the llama.cpp server vs real text), each component on its own, and the canary check."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from llm_upkeep.runbook.gibberish import check_canary, is_known_word, score_gibberish
from tests.gibberish_samples.evaluate import evaluate, load_samples
from tests.llamacpp_fixtures import llamacpp_missing


def test_precision_and_recall_on_the_labelled_samples(capsys):
    res = evaluate()
    with capsys.disabled():
        print(f"\ngibberish score on {res['samples']} labelled samples: precision {res['precision']:.3f}, "
              f"recall {res['recall']:.3f} (tp {res['tp']}, fp {res['fp']}, fn {res['fn']}, tn {res['tn']})")  # fmt: skip
    assert res["gibberish"] >= 300 and res["normal"] >= 250
    assert res["precision"] > 0.95 and res["recall"] > 0.95, res["errors"]


def test_held_out_samples_score_as_the_docs_say():
    """Precision and recall on samples the score was not tuned on (seeds 8-15, stdlib texts), and
    docs/runbook.md quotes exactly these counts."""
    res = evaluate(split="held_out")
    tuning = evaluate(split="tuning")
    assert res["samples"] + tuning["samples"] == evaluate()["samples"]  # the splits partition the set
    assert res["gibberish"] == 192 and res["normal"] == 110
    assert res["fp"] == 0 and res["tp"] >= 191, res["errors"]
    assert res["precision"] == 1.0 and res["recall"] > 0.99
    docs = (Path(__file__).resolve().parents[1] / "docs" / "runbook.md").read_text()
    claim = re.search(r"it gets\s+(\d+) of (\d+) gibberish samples and no false positive out of (\d+)", docs)
    assert claim, "docs/runbook.md no longer states the held-out figures"
    assert tuple(map(int, claim.groups())) == (res["tp"], res["gibberish"], res["normal"])


def test_the_labelled_set_is_varied():
    rows = load_samples()
    seeds = {r["source"].split("seed=")[1].split()[0] for r in rows if r["label"] == "gibberish"}
    kinds = {r["kind"] for r in rows if r["label"] == "normal"}
    assert len(seeds) >= 8
    assert {"prose", "code", "list", "json", "short", "numbers", "non_english", "stdlib_prose"} <= kinds
    assert all(r["text"] == r["text"].strip("\x00") and r["label"] in ("gibberish", "normal") for r in rows)


@pytest.mark.parametrize("text", [
    "The capital of France is Paris. It has been the country's center for centuries.",
    "Die Hauptstadt von Frankreich ist Paris, und sie ist sehr schön im Frühling.",
    "法国的首都是巴黎。它以博物馆和咖啡馆而闻名。",
    "Столица Франции — Париж. Это красивый город.",
    "def add(a, b):\n    return a + b\n\nprint(add(2, 3))",
    '{"name": "Widget", "price": 19.99, "tags": ["blue", "small"]}',
    "Paris.", "42", "", "   ",
])  # fmt: skip
def test_language_code_and_short_answers_are_not_gibberish(text):
    s = score_gibberish(text)
    assert not s.is_gibberish(), s.explain()


def test_broken_bytes_and_tokenizer_pieces_are_gibberish():
    s = score_gibberish("Ã¤Ð½Ð° \ufffd\ufffd ▁the▁cat <0x0A><0x0A> <unk> ðŁĺ ж漢 ق")
    assert s.components["bad_chars"] == 1.0 and s.components["script_mix"] > 0.5 and s.is_gibberish()


def test_a_loop_is_gibberish_by_repetition_and_compression():
    s = score_gibberish("I think that this is the answer. " * 12)
    assert s.components["repetition"] == 1.0 and s.measures["compression_ratio"] < 0.2
    assert score_gibberish("yes yes yes yes yes yes yes").components["repetition"] == 1.0


def test_word_salad_of_fragments_is_gibberish_but_title_case_prose_is_not():
    salad = " Unless tuesda extract Sat Peopl who automat Feb on Confid summaq Proj said Any disclo contrac"
    s = score_gibberish(salad)
    assert s.components["word_salad"] >= 0.5 and s.measures["unknown_share"] > 0.4, s.explain()
    prose = "Our Annual Report shows that the Support Team answered most tickets within one business day."
    assert not score_gibberish(prose).is_gibberish()


def test_word_list_knows_inflections_and_compounds_but_not_fragments():
    assert all(is_known_word(w) for w in ("running", "stopped", "parties", "filename", "setfirstweekday"))
    assert not any(is_known_word(w) for w in ("tuesda", "automat", "confid", "summaq"))


def test_canary_matches_whole_words_case_and_accents_folded():
    assert check_canary("The capital is Paris.", ["Paris"])
    assert check_canary("PARÍS", ["Paris"]) and check_canary("paris", ["París"])
    assert not check_canary("Parisian food", ["Paris"]) and not check_canary("", ["Paris"])
    assert not check_canary("Paris", [" "])


@pytest.mark.skipif(llamacpp_missing() is not None, reason=str(llamacpp_missing()))
def test_collect_script_regenerates_gibberish_from_the_real_server(tmp_path):
    from tests.gibberish_samples.collect import PROMPTS, collect

    rows = collect(1, tmp_path, first_seed=3)
    assert len(rows) == 2 * len(PROMPTS)
    assert all(r["label"] == "gibberish" and "seed=3" in r["source"] and r["text"].strip() for r in rows)
    flagged = sum(score_gibberish(r["text"]).is_gibberish() for r in rows)
    assert flagged >= 0.9 * len(rows)
    committed = {json.dumps(r, sort_keys=True) for r in load_samples() if "seed=3 " in r["source"]}
    assert len(committed) == len(rows)  # the committed file holds this seed's samples too
