"""Dated data tables (CVEs, cloud prices) shipped in llm_upkeep/data and overridable by a path in
config, so they can be updated without a release."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def load_table(model: type[M], shipped: str, path: str | Path | None, what: str, error: type[Exception]) -> M:
    """The table at `path`, else the shipped one; `error` names the file and the first problem."""
    try:
        if path:
            p = Path(path).expanduser()
            text, src = p.read_text(encoding="utf-8"), str(p)
        else:
            ref = resources.files("llm_upkeep").joinpath("data", shipped)
            text, src = ref.read_text(encoding="utf-8"), f"llm_upkeep/data/{shipped}"
    except OSError as exc:
        raise error(f"{path}: cannot read the {what}: {exc.strerror}") from None
    try:
        table = model.model_validate(json.loads(text))
    except ValidationError as exc:
        e = exc.errors()[0]
        raise error(
            f"{src}: not a valid {what}: {e['msg']} at {'.'.join(str(x) for x in e['loc'])}"
        ) from None
    except ValueError as exc:
        raise error(f"{src}: not JSON: {exc}") from None
    table.source = src
    return table
