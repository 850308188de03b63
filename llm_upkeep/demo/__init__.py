"""`llm-upkeep demo`: the whole thing on one machine, in one command, with nothing left behind.

Starts a Prefect server on SQLite in the state dir, simulated LLM servers (a healthy Ollama
and its staging instance sharing one model store on disk, and a vLLM with a planted
slow-first-token fault), a model registry, an S3 server (moto) and a Slack receiver that prints
what it gets; writes a config pointing at them; serves every deployment of prefect.yaml
(`llm-upkeep serve` in a subprocess, the same machinery a single host uses in production);
runs each flow once, the model chain included (evaluate-model promotes a candidate,
rollback-model puts the previous version back); prints where to click.

Why the process care: a demo that leaves a Prefect server or a flow run behind costs the
newcomer a port and their trust. Every child runs in its own session and is stopped by
process group; the demo also makes itself the child subreaper (Linux), so a flow-run process
orphaned by a crash is re-parented to the demo and stopped with the rest.

One file per part: settings.py (the demo's story: names, order, parameters), processes.py,
one file per local service (llm_servers.py, slack.py, s3.py), demo_config.py, prefect_stack.py,
runs.py, model_chain.py, guide.py, and app.py (start and stop in order, run_demo).
"""

from llm_upkeep.demo.app import Demo, run_demo
from llm_upkeep.demo.demo_config import demo_server_log
from llm_upkeep.demo.processes import Child, become_subreaper, free_port, port_in_use, stop_descendants
from llm_upkeep.demo.runs import RunOutcome, demo_parameters
from llm_upkeep.demo.settings import (
    BUCKET,
    CANARY,
    CANDIDATE,
    CURRENT,
    DEMO_PARAMETERS,
    FAULT,
    FAULTY,
    HEALTHY,
    MODEL_BYTES,
    PROD_MODEL,
    RUN_AGAIN,
    RUN_CHAIN,
    RUN_FIRST,
    RUN_LAST,
    S3_KEY_ENV,
    S3_SECRET_ENV,
    SLACK_ENV,
    SLOW_FIRST_TOKEN_S,
    STAGING,
    TTFT_ALERT_S,
    DemoError,
    default_demo_dir,
)

__all__ = [
    "BUCKET", "CANARY", "CANDIDATE", "CURRENT", "DEMO_PARAMETERS", "FAULT", "FAULTY", "HEALTHY",
    "MODEL_BYTES", "PROD_MODEL", "RUN_AGAIN", "RUN_CHAIN", "RUN_FIRST", "RUN_LAST", "S3_KEY_ENV",
    "S3_SECRET_ENV", "SLACK_ENV", "SLOW_FIRST_TOKEN_S", "STAGING", "TTFT_ALERT_S", "Child", "Demo",
    "DemoError", "RunOutcome", "become_subreaper", "default_demo_dir", "demo_parameters",
    "demo_server_log", "free_port", "port_in_use", "run_demo", "stop_descendants",
]  # fmt: skip
