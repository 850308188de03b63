"""What the demo sets up: the names of its servers and models, its alert threshold, which flows
run in which order and with which parameters.

Why its own file: these are the demo's story (a healthy server, a faulty one, a model chain);
changing the story changes this file, not the process and service plumbing.
"""

from __future__ import annotations

import os
from typing import Any

from llm_upkeep.config import default_state_dir

SLACK_ENV = "LLM_UPKEEP_DEMO_SLACK_WEBHOOK"
S3_KEY_ENV = "LLM_UPKEEP_DEMO_S3_KEY"
S3_SECRET_ENV = "LLM_UPKEEP_DEMO_S3_SECRET"
BUCKET = "llm-upkeep-demo"
HEALTHY, FAULTY = "ollama-healthy", "vllm-slow"
FAULT = "slow_first_token"
TTFT_ALERT_S = 2.0
SLOW_FIRST_TOKEN_S = 3.0
STAGING = "ollama-staging"
# The model chain: production serves the alias PROD_MODEL, an Ollama tag that a promotion
# overwrites (the previous version kept under a backup tag). At start it is CURRENT, pinned in
# models.lock; CANDIDATE waits in the registry. Upstream has moved PROD_MODEL to the candidate's
# build, so the weekly review reports an update, and evaluate-model tests it before it goes live.
PROD_MODEL, CURRENT, CANDIDATE = "llama3:8b", "llama3:8b-v1", "llama3:8b-v2"
MODEL_BYTES = 300_000  # small fake weights: hashing and pulling them keeps the demo fast
# Run order: daily-health first (its report is what a newcomer looks at first), then the rest
# together, then the ones that need another's result: the drill restores the backup's snapshot,
# and a second weekly-benchmark compares itself with the baseline the first one pinned. The
# model chain runs last, one flow at a time: evaluate-model's benchmark compares the candidate
# with production, so nothing else should load the machine meanwhile, and rollback-model
# undoes the promotion evaluate-model made.
RUN_FIRST = ("daily-health",)
RUN_LAST = ("restore-drill",)
RUN_AGAIN = ("weekly-benchmark",)
RUN_CHAIN = ("evaluate-model", "rollback-model")
# Parameters the demo passes where the flow takes them (filtered by each deployment's schema).
# evaluate-model follows the demo config's automatic policy so the demo does not wait for a
# person; a run started from the UI with approval=manual pauses for a Resume form (a run may make
# approval stricter than the config, never looser).
DEMO_PARAMETERS: dict[str, dict[str, Any]] = {
    "daily-health": {"allow_restart": True},
    "scheduled-restart": {},
    "evaluate-model": {"candidate": CANDIDATE, "endpoint": HEALTHY},
    "rollback-model": {"endpoint": HEALTHY, "reason": "demo: undo the promotion evaluate-model made"},
    "runbook": {"dry_run": True, "wait_for_approval": False},
}
# The simulated servers answer the runbook's canary question right, as a healthy model would.
CANARY = {"capital of France": "Paris."}


class DemoError(Exception):
    """The demo cannot go on; the message says why and what to do."""


def default_demo_dir() -> str:
    return os.path.join(default_state_dir(), "demo")
