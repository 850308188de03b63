"""Regenerate tests/gibberish_samples/gibberish.jsonl from the real llama.cpp server.

Why real output: a detector tuned on hand-made gibberish learns the hand, not the failure. A
model with random weights (llm_upkeep.sim.tiny_gguf) is what a corrupted model file looks like
from the outside: fluent-looking token streams with no meaning. Several seeds (several "broken
files"), prompts, chat and completion routes, greedy and sampled decoding, and lengths.

Real text for the "normal" side comes from two places: normal.jsonl (written: prose, short
answers, lists, JSON, code, numbers, other languages) and normal_stdlib.jsonl, collected here with
``--normal`` from the docstrings and source of Python's standard library (real technical English
and real code that the score was never tuned on).

Usage:  .venv/bin/python -m tests.gibberish_samples.collect [--seeds 8] [--out PATH]
        .venv/bin/python -m tests.gibberish_samples.collect --normal
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from llm_upkeep.sim.tiny_gguf import write_tiny_llama_gguf  # noqa: E402
from tests.llamacpp_fixtures import LlamaCppServer, llamacpp_missing  # noqa: E402

HERE = Path(__file__).resolve().parent

PROMPTS = [
    "test",
    "What is the capital of France? Answer with one word.",
    "Summarize this contract clause: either party may terminate on thirty days written notice.",
    "Classify this support ticket: I was charged twice for my subscription this month.",
    "Extract the dates from this email: the meeting moved from March 3 to April 10.",
    "Write a short email to the team about the project review on Friday.",
    "Explain in two sentences why the sky is blue.",
    "List three things to check when a server is slow.",
    "Answer in JSON only: the name and price of the order.",
    "Hello! How are you today?",
    "Translate to German: the delivery arrived late and the box was broken.",
    "Give me a python function that adds two numbers.",
]

# (route, temperature, max_tokens) per prompt index, rotated so every combination appears.
MODES = [
    ("chat", 0.0, 16),
    ("completion", 0.0, 48),
    ("chat", 0.8, 64),
    ("completion", 1.0, 32),
    ("chat", 0.0, 96),
]


def generate(client: httpx.Client, url: str, route: str, prompt: str, temperature: float, max_tokens: int,
             seed: int) -> str:  # fmt: skip
    if route == "chat":
        body = {"model": "tiny", "messages": [{"role": "user", "content": prompt}]}
        path = "/v1/chat/completions"
    else:
        body = {"model": "tiny", "prompt": prompt}
        path = "/v1/completions"
    body.update({"max_tokens": max_tokens, "temperature": temperature, "seed": seed})
    r = client.post(url + path, json=body, timeout=60.0)
    r.raise_for_status()
    choice = r.json()["choices"][0]
    return choice["message"]["content"] if route == "chat" else choice["text"]


def collect(seeds: int, workdir: Path, first_seed: int = 0) -> list[dict]:
    rows: list[dict] = []
    with httpx.Client(trust_env=False) as client:
        for seed in range(first_seed, first_seed + seeds):
            model = write_tiny_llama_gguf(workdir / f"tiny-seed{seed}.gguf", seed=seed)
            server = LlamaCppServer(model, log_path=workdir / f"server-{seed}.log")
            with server:
                for i, prompt in enumerate(PROMPTS):
                    for j in range(2):
                        route, temp, n = MODES[(i + j + seed) % len(MODES)]
                        text = generate(client, server.url, route, prompt, temp, n, seed * 100 + i)
                        rows.append({
                            "label": "gibberish", "kind": "random_weights", "text": text,
                            "source": f"llama.cpp tiny_gguf seed={seed} route={route} temperature={temp} "
                                      f"max_tokens={n} prompt={prompt!r}",
                        })  # fmt: skip
    return rows


STDLIB_MODULES = [
    "argparse",
    "asyncio.locks",
    "base64",
    "bisect",
    "calendar",
    "collections",
    "contextlib",
    "csv",
    "dataclasses",
    "datetime",
    "difflib",
    "email.message",
    "fractions",
    "functools",
    "gzip",
    "heapq",
    "http.client",
    "inspect",
    "ipaddress",
    "json",
    "logging",
    "pathlib",
    "pickle",
    "queue",
    "random",
    "shlex",
    "shutil",
    "socket",
    "statistics",
    "string",
    "subprocess",
    "tarfile",
    "tempfile",
    "textwrap",
    "threading",
    "timeit",
    "urllib.parse",
    "uuid",
    "zipfile",
    "zlib",
]


def collect_stdlib(n_prose: int = 80, n_code: int = 30) -> list[dict]:
    """Docstring paragraphs and short functions of the standard library, picked deterministically."""
    import importlib
    import inspect
    import random

    paragraphs: list[tuple[str, str]] = []
    functions: list[tuple[str, str]] = []
    for name in STDLIB_MODULES:
        mod = importlib.import_module(name)
        for attr, obj in sorted(vars(mod).items()):
            if attr.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
                continue
            doc = inspect.getdoc(obj) or ""
            for para in doc.split("\n\n"):
                para = " ".join(para.split())
                if 80 <= len(para) <= 600 and not para.startswith((">>>", "..")):
                    paragraphs.append((f"{name}.{attr}", para))
            if inspect.isfunction(obj):
                try:
                    src = inspect.getsource(obj)
                except (OSError, TypeError):
                    continue
                if 150 <= len(src) <= 900:
                    functions.append((f"{name}.{attr}", src))
    rng = random.Random(20261128)
    rows = [
        {"label": "normal", "kind": "stdlib_prose", "text": t, "source": f"docstring of {w}"}
        for w, t in rng.sample(paragraphs, min(n_prose, len(paragraphs)))
    ]
    rows += [
        {"label": "normal", "kind": "stdlib_code", "text": t, "source": f"source of {w}"}
        for w, t in rng.sample(functions, min(n_code, len(functions)))
    ]
    return rows


def write_jsonl(rows: list[dict], out: Path) -> None:
    """temp file + fsync + count check + os.replace: a half-written sample file never replaces a good one."""
    tmp = out.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    if sum(1 for _ in open(tmp, encoding="utf-8")) != len(rows):
        raise SystemExit(f"{tmp}: written sample count does not match")
    os.replace(tmp, out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=8, help="random models (one per seed)")
    p.add_argument("--first-seed", type=int, default=0, help="seed of the first random model")
    p.add_argument("--out", default=None, help="output file (default: gibberish.jsonl / normal_stdlib.jsonl)")
    p.add_argument(
        "--normal", action="store_true", help="collect the standard-library normal samples instead"
    )
    args = p.parse_args(argv)
    if args.normal:
        rows = collect_stdlib()
        out = Path(args.out or HERE / "normal_stdlib.jsonl")
        write_jsonl(rows, out)
        print(f"{out}: {len(rows)} samples from the standard library")
        return 0
    why = llamacpp_missing()
    if why:
        print(f"cannot run the llama.cpp server: {why}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="gibberish-") as d:
        rows = collect(args.seeds, Path(d), args.first_seed)
    out = Path(args.out or HERE / "gibberish.jsonl")
    write_jsonl(rows, out)
    print(f"{out}: {len(rows)} samples from {args.seeds} random models")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
