"""Update discovery against the local registry over real HTTP: newer tags and quantizations of a
pinned Ollama family (its tag list), sibling repos of a Hugging Face model (the publisher's other
repos of that size), each with the command that evaluates it; only metadata is requested."""

from __future__ import annotations

from datetime import UTC, datetime

from llm_upkeep.review.config import ReviewConfig
from llm_upkeep.review.discovery import size_token
from llm_upkeep.review.report import WeeklyReviewResult, render_report, section_from
from llm_upkeep.review.updates import check_model_updates
from tests.review_fixtures import ollama_manifest

OLD_SHA = "a" * 40


def cfg_for(registry, **kw) -> ReviewConfig:
    return ReviewConfig(
        ollama_registry_url=registry.url, hf_endpoint=registry.url, registry_timeout_s=5, **kw
    )


def plant(registry):
    pinned = registry.set_tag("library", "llama3", "8b", ollama_manifest(4_661_211_424, "old"))
    for tag in (
        "8b-instruct-q8_0",
        "8b-instruct-q4_K_M",
        "8b-text-fp16",
        "70b",
        "70b-instruct-q4_0",
        "latest",
    ):
        registry.set_tag("library", "llama3", tag, ollama_manifest(4_000_000_000, tag))
    registry.set_revision("meta-llama/Llama-3.1-8B-Instruct", "main", OLD_SHA)
    registry.repos += ["meta-llama/Llama-3.1-8B-Instruct-GGUF", "meta-llama/Llama-3.2-8B-Instruct",
                       "meta-llama/Llama-3.1-70B-Instruct", "someone-else/Llama-3.1-8B-Instruct-AWQ"]  # fmt: skip
    return pinned


def test_candidates_of_each_pinned_family_with_a_ready_command(registry):
    digest = plant(registry)
    pinned = [("llama3", "ollama", "8b", digest), ("meta-llama/Llama-3.1-8B-Instruct", "hf", "main", OLD_SHA)]
    r = check_model_updates(pinned, cfg_for(registry))
    by = {c["name"]: c for c in r.candidates}
    assert set(by) == {"llama3:8b-instruct-q4_K_M", "llama3:8b-instruct-q8_0", "llama3:8b-text-fp16",
                       "meta-llama/Llama-3.1-8B-Instruct-GGUF", "meta-llama/Llama-3.2-8B-Instruct"}  # fmt: skip
    assert by["llama3:8b-instruct-q8_0"]["command"] == "llm-upkeep run evaluate-model llama3:8b-instruct-q8_0"
    assert "q8_0" in by["llama3:8b-instruct-q8_0"]["why"]
    assert by["meta-llama/Llama-3.1-8B-Instruct-GGUF"]["why"] == "quantization gguf"
    assert "evaluate-model Llama-3.2-8B-Instruct" in by["meta-llama/Llama-3.2-8B-Instruct"]["command"]
    assert "5 candidate(s)" in r.summary
    # metadata only: manifests, tag lists, revisions and searches; never a blob (what a pull downloads)
    paths = [p for _m, p, _h in registry.requests]
    assert paths and not any("/blobs/" in p for p in paths)
    md = render_report(WeeklyReviewResult(status="ok", window_start=datetime(2026, 11, 23, tzinfo=UTC),
                                          window_end=datetime(2026, 11, 30, tzinfo=UTC),
                                          sections={"model_updates": section_from(r)}))  # fmt: skip
    assert (
        "Candidates to evaluate (not pulled)" in md
        and "`llm-upkeep run evaluate-model llama3:8b-text-fp16`" in md
    )


def test_a_family_whose_tag_list_fails_is_a_note_not_a_failure(registry):
    digest = registry.set_tag("library", "qwen2.5", "7b", ollama_manifest(4_700_000_000, "q"))
    registry.set_tag("library", "qwen2.5", "7b-instruct-q8_0", ollama_manifest(8_000_000_000, "q8"))
    r = check_model_updates([("qwen2.5", "ollama", "7b", digest), ("nope", "ollama", "1b", "sha256:" + "c" * 64)],
                            cfg_for(registry))  # fmt: skip
    assert [c["name"] for c in r.candidates] == ["qwen2.5:7b-instruct-q8_0"]
    assert any(n.startswith("nope: candidates not listed") and "404" in n for n in r.candidate_notes)
    off = check_model_updates(
        [("qwen2.5", "ollama", "7b", digest)], cfg_for(registry, discover_candidates=False)
    )
    assert off.candidates == []


def test_size_token():
    assert size_token("8b-instruct-q4_K_M") == "8b" and size_token("Llama 3.1 8B Instruct") == "8b"
    assert size_token("8x7b") == "8x7b" and size_token("latest") is None and size_token("0.5b") == "0.5b"
