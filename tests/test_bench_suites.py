"""Suites: the shipped default suite, validation errors that name file and key, the suite hash."""

from __future__ import annotations

import pytest

from llm_upkeep.bench.suites import DEFAULT_SUITE, SuiteError, load_suite, parse_suite


def write(tmp_path, text: str):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return p


def test_default_suite_covers_the_playbook_jobs_with_real_checks():
    s = load_suite()
    assert s.source == str(DEFAULT_SUITE)
    jobs: dict[str, int] = {}
    for p in s.prompts:
        jobs[p.job] = jobs.get(p.job, 0) + 1
        assert p.checks, f"{p.id} has no checks"
    assert set(jobs) == {"summarize-contract-clause", "classify-support-ticket", "extract-dates-from-email"}
    assert all(n >= 3 for n in jobs.values())
    types = {c.type for p in s.prompts for c in p.checks}
    assert types == {"exact", "contains", "regex", "json", "numeric", "similarity"}


def test_hash_is_stable_and_changes_with_prompts_or_checks_not_description():
    base = {
        "name": "x",
        "prompts": [{"id": "a", "prompt": "hi", "checks": [{"type": "exact", "value": "yo"}]}],
    }
    h = parse_suite(base).hash
    assert parse_suite({**base, "description": "other words"}).hash == h
    changed_prompt = {**base, "prompts": [{**base["prompts"][0], "prompt": "hello"}]}
    changed_check = {
        **base,
        "prompts": [{**base["prompts"][0], "checks": [{"type": "exact", "value": "no"}]}],
    }
    assert parse_suite(changed_prompt).hash != h
    assert parse_suite(changed_check).hash != h


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("name: x\nprompts:\n  - id: a\n    prompt: hi\n    chekcs: []\n", "prompts[0:a].chekcs", "unknown key"),
        ("name: x\nprompts:\n  - id: a\n    prompt: hi\n    checks: [{type: fuzzy}]\n", "prompts[0:a].checks[0]",
         "unknown check type"),
        ("name: x\nprompts:\n  - id: a\n    prompt: hi\n    checks: [{type: regex, pattern: '(('}]\n",
         "prompts[0:a].checks[0]", "invalid regex"),
        ("name: x\nprompts:\n  - id: a\n    prompt: hi\n    checks: [{type: json, schema: {type: 12}}]\n",
         "prompts[0:a].checks[0].schema", "not a valid JSON Schema"),
        ("name: x\nprompts:\n  - id: a\n    prompt: hi\n  - id: a\n    prompt: ho\n", "prompts", "duplicate prompt id"),
        ("name: x\nprompts:\n  - id: a\n    prompt: hi\n    checks: [{type: numeric, value: 3, pattern: 'x'}]\n",
         "prompts[0:a].checks[0]", "capturing group"),
        ("name: x\nprompts: []\n", "prompts", "at least 1"),
    ],
)  # fmt: skip
def test_bad_suites_name_the_file_and_key(tmp_path, text, key, message):
    p = write(tmp_path, text)
    with pytest.raises(SuiteError) as ei:
        load_suite(p)
    assert ei.value.key == key, str(ei.value)
    assert message in str(ei.value) and str(p) in str(ei.value)


def test_unreadable_suites(tmp_path):
    with pytest.raises(SuiteError, match="not found"):
        load_suite(tmp_path / "nope.yaml")
    with pytest.raises(SuiteError, match="not valid YAML at line 3"):
        load_suite(write(tmp_path, "name: x\nprompts: [\n"))
    with pytest.raises(SuiteError, match="a suite is a mapping"):
        load_suite(write(tmp_path, "- a\n- b\n"))


def test_relative_suite_path_is_found_next_to_the_config(tmp_path, monkeypatch):
    d = tmp_path / "conf"
    d.mkdir()
    (d / "mine.yaml").write_text("name: mine\nprompts:\n  - {id: a, prompt: hi}\n")
    monkeypatch.chdir(tmp_path)
    assert load_suite("mine.yaml", config_source=str(d / "llm-upkeep.toml")).name == "mine"
    with pytest.raises(SuiteError):
        load_suite("mine.yaml")
