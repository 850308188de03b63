"""Weekly benchmark: speed and answer quality of LLM endpoints against a pinned baseline.

Public entry points (import them from their modules, this package imports nothing eagerly so
that llm_upkeep.config can import the [benchmark] section without cycles):
- llm_upkeep.bench.suites: load_suite, Suite
- llm_upkeep.bench.runner: run_suite, RunSettings, RunResult, identify_endpoint
- llm_upkeep.bench.grading: grade_run, reference_answers
- llm_upkeep.bench.compare: compare_runs, Comparison
- llm_upkeep.bench.baseline: find_baseline, load_baseline, pin_baseline, save_run
- llm_upkeep.bench.result: judge_run, EndpointBenchmark, BenchmarkResult
- llm_upkeep.bench.report: render_markdown, prompt_rows, plot_latency, slack_message
"""
