"""Where a benchmark's figures go: one JSON file each (``scripts/bench`` gathers them in
``bench-results/``, ``summary.py`` reads them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson


def write_json(path: Path, results: Any) -> None:
    """``results`` as indented JSON at ``path`` (its folder made), and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    print(f"  written: {path}")
