"""Planted history and request logs for the cost tests: October 2026, hand-calculable."""

from __future__ import annotations

import json
from contextlib import closing
from datetime import timedelta

from llm_upkeep import history
from llm_upkeep.cost.review import month_window

START, END, PERIOD = month_window("2026-10")


def plant_month(state_dir):
    rows = []
    e = 0
    for k in range(-1, 746):
        t = (START + timedelta(hours=k)).isoformat()
        if k == -1:
            e = 0
        elif k == 0:
            e = 5_000_000_000
        elif k <= 400:
            e += 1_080_000_000  # 300 W for an hour = 0.3 kWh = 1.08e9 mJ
        elif k == 401:
            e = 540_000_000  # counter restarted (driver reload)
        elif k <= 744:
            e += 1_440_000_000  # 400 W
        else:
            e += 50_000_000_000
        rows.append(
            (t, "gpu1", 0, None, None, None, None, None, None, None, None, 300.0, None, e, "[]", None, None)
        )
        # GPU 1 has no energy counter: its power alternates 200/300 W, trapezoid mean 250 W
        p = 200.0 if k % 2 else 300.0
        rows.append(
            (t, "gpu1", 1, None, None, None, None, None, None, None, None, p, None, None, "[]", None, None)
        )
    with closing(history.connect(state_dir)) as c, c:
        c.executemany("INSERT INTO gpu_samples VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)


def write_requests(path):
    with open(path, "w") as f:
        for d in range(-1, 32):  # a day before and after October too
            day = START + timedelta(days=d)
            for i in range(100):  # OpenAI-style usage
                rec = {"ts": (day + timedelta(minutes=10 * i)).isoformat(),
                       "usage": {"prompt_tokens": 1500, "completion_tokens": 500}}  # fmt: skip
                f.write(json.dumps(rec) + "\n")
        for k in range(-5, 750):  # Ollama-style counts, one request an hour
            rec = {"timestamp": (START + timedelta(hours=k, minutes=30)).isoformat(),
                   "prompt_eval_count": 800, "eval_count": 200}  # fmt: skip
            f.write(json.dumps(rec) + "\n")
