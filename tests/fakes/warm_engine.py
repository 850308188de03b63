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
        "nvml_preloaded": "pynvml" in sys.modules,  # the GPU steps' module, imported before the fork
        # whether Prefect's API clients here share one TLS context (llm_upkeep/warm_start/tls.py)
        "api_tls_shared": type(getattr(sys.modules.get("prefect.client.orchestration"), "ssl", None)).__name__
        == "_SharedContexts",
    }
    # what the zygote built before the fork (llm_upkeep/warm_start/zygote.py prebuild_tls,
    # complete_models): the contexts a run's clients build themselves, and a deferred model's state
    orch = sys.modules.get("prefect.client.orchestration")
    shim = getattr(orch, "ssl", None)
    if info["api_tls_shared"]:
        from prefect.client.schemas.objects import FlowRun

        import llm_upkeep.clients.tls as own_tls
        from llm_upkeep.clients.base import make_http_client

        api0, own0 = shim.built, own_tls.built
        orch.PrefectClient("http://127.0.0.1:1/api")
        make_http_client()
        info["tls_built_in_run"] = {"api": shim.built - api0, "own": own_tls.built - own0}
        info["version_check_shared"] = sys.modules["prefect._internal.version_checking"].ssl is shim
        info["flow_run_model_complete"] = FlowRun.__dict__.get("__pydantic_complete__")
    print(json.dumps(info), flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    if os.environ.get("WARM_TEST_PIDFILE"):
        with open(os.environ["WARM_TEST_PIDFILE"], "w") as f:
            f.write(str(os.getpid()))
    time.sleep(float(os.environ.get("WARM_TEST_SLEEP", "0")))
    sys.exit(int(os.environ.get("WARM_TEST_EXIT", "0")))
