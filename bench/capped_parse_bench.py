"""The gate's parse speed with the canary's confidence cap (issue 16 item 5).

A capped canary's event entry carries two more keys (``raw_confidence``, ``confidence_cap``) and
the parser keeps the raw confidence. This measures the window parse (``WindowBuilder``, pages
of 2,000, as the gate reads them) on the reference engine's events, in CPU seconds of this
process (steadier than wall time on a shared machine), best of ``--repeat``:

* ``shadow``: the lab's default (patchtst in shadow), the layout most windows have;
* ``canary``: patchtst voting at 0.10, no cap;
* ``capped``: the same canary with ``QSC_CANARY_CONF_CAP=0.75`` (the fast path's capped layout);
* ``capped, general parser``: the capped events without the fast path, i.e. what they would
  cost if the capped layout fell back to the general parser.

    .venv/bin/python bench/capped_parse_bench.py [--events 200000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "lab" / "engine"))
sys.path.insert(0, str(REPO_ROOT / "module_utils"))

from ai_engine.config import load_config  # noqa: E402
from ai_engine.engine import Engine  # noqa: E402
from model_safety.telemetry.events import WindowBuilder  # noqa: E402

POOL = 20_000
PAGE = 2000
START = datetime(2026, 1, 10, tzinfo=UTC)
CANARY = {
    "PATCHTST_SHADOW_ONLY": "false",
    "QSC_CANARY_MODEL": "patchtst",
    "QSC_CANARY_WEIGHT": "0.1",
    "QSC_MODEL_WEIGHTS": "xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:0.1",
}
CASES = (
    ("shadow", {"PATCHTST_SHADOW_ONLY": "true"}, True),
    ("canary", CANARY, True),
    ("capped", {**CANARY, "QSC_CANARY_CONF_CAP": "0.75"}, True),
    ("capped, general parser", {**CANARY, "QSC_CANARY_CONF_CAP": "0.75"}, False),
)


def entries(env: dict[str, str], count: int) -> list[tuple[bytes, bytes]]:
    """``count`` stream entries: a pool of distinct engine events repeated with fresh ids."""
    engine = Engine(load_config({"ENGINE_SEED": "3", **env}))
    pool = [
        engine.step(i / 10, START + timedelta(milliseconds=37 * i)).json.encode()
        for i in range(POOL)
    ]
    return [(f"{1_768_000_000_000 + i}-0".encode(), pool[i % POOL]) for i in range(count)]


def parse_seconds(data: list[tuple[bytes, bytes]], fast: bool, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        began = time.process_time()
        builder = WindowBuilder(fast=fast)
        for start in range(0, len(data), PAGE):
            builder.add(data[start : start + PAGE])
        window = builder.build()
        best = min(best, time.process_time() - began)
        if window.malformed or window.n != len(data):
            raise SystemExit(f"unexpected window: {window.n} events, {len(window.malformed)} bad")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print("| layout | events | parse (CPU s) | events/s |\n| --- | --- | --- | --- |")
    for name, env, fast in CASES:
        seconds = parse_seconds(entries(env, args.events), fast, args.repeat)
        print(f"| {name} | {args.events} | {seconds:.2f} | {args.events / seconds:,.0f} |")


if __name__ == "__main__":
    main()
