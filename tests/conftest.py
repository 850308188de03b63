"""Shared fixtures. Feature fixture modules are listed in pytest_plugins (one line each)."""

from __future__ import annotations

import os

import pytest

# Keep Prefect from phoning home and from touching the user's ~/.prefect.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
# `llm-upkeep run` in tests runs the flow in the CLI's process (monkeypatches apply, no runner left
# behind); tests/test_cli_runner.py turns the warm background runner on for itself.
os.environ.setdefault("LLM_UPKEEP_CLI_BACKGROUND", "0")

pytest_plugins: list[str] = [
    "tests.llm_fixtures",
    "tests.llamacpp_fixtures",
    "tests.s3_fixtures",
    "tests.review_fixtures",
    "tests.models_fixtures",
    "tests.demo_fixtures",
    "tests.runbook_fixtures",
    "tests.skip_policy",
]


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server for every flow test (about 10 s to start here)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def state_dir(tmp_path):
    d = tmp_path / "state"
    d.mkdir()
    return d
