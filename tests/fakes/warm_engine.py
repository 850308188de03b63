"""A stand-in for ``prefect.engine`` in the warm-start tests: reports where and how it runs.

Prints one JSON line (pid, parent pid, cwd, argv, the WARM_TEST_* variables of its environment,
whether Prefect was already imported when it started, whether its API clients share a TLS
context), then: sleeps WARM_TEST_SLEEP seconds (its pid written to WARM_TEST_PIDFILE first) and
exits with WARM_TEST_EXIT.
"""

import json
import os
import sys
import time

if __name__ == "__main__":
    info = {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "cwd": os.getcwd(),
        "argv": sys.argv[1:],
        "env": {k: v for k, v in os.environ.items() if k.startswith("WARM_TEST_")},
        "prefect_preloaded": "prefect.flow_engine" in sys.modules,
        # whether Prefect's API clients here share one TLS context (llm_upkeep/warm_start/tls.py)
        "api_tls_shared": type(getattr(sys.modules.get("prefect.client.orchestration"), "ssl", None)).__name__
        == "_SharedContexts",
    }
    print(json.dumps(info), flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    if os.environ.get("WARM_TEST_PIDFILE"):
        with open(os.environ["WARM_TEST_PIDFILE"], "w") as f:
            f.write(str(os.getpid()))
    time.sleep(float(os.environ.get("WARM_TEST_SLEEP", "0")))
    sys.exit(int(os.environ.get("WARM_TEST_EXIT", "0")))
