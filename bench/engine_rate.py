"""How many events per second the reference engine sustains (figures, not a test).

1. In-process: the full model + ensemble + JSON path with no I/O (`python3 -m ai_engine
   --benchmark N`), on this machine's Python.
2. On a lab host (when the lab is up and this runs as root): the engine as a systemd service
   with Redis and SQLite, asked for ever higher ENGINE_RATE; the achieved rate is the growth
   of the stream's entries-added counter (XINFO STREAM, which MAXLEN trimming does not cap)
   over a measured window. The baseline is the configured lab rate (10/s).
   The host's env file is restored and the engine restarted afterwards.

    make bench            (or: .venv/bin/python bench/engine_rate.py [--rates 10,500,2000])
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "lab"))

from labctl import hosts  # noqa: E402
from labctl.config import load_config  # noqa: E402
from labctl.remote import ENV_FILE, LabHost, configure  # noqa: E402

WARMUP_S = 2.0
WINDOW_S = 10.0


def in_process(events: int) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "ai_engine", "--benchmark", str(events)],
        cwd=REPO_ROOT / "lab" / "engine",
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "ENGINE_SEED": "1"},
    )
    return result.stdout.strip()


def on_lab_host(host: LabHost, rates: list[int]) -> None:
    original = host.read_file(ENV_FILE)
    try:
        print(f"{'asked /s':>9} {'achieved /s':>12} {'ratio':>6}  ({host.name}, {WINDOW_S:.0f} s)")
        for rate in rates:
            configure(host, env={"ENGINE_RATE": str(rate)})
            time.sleep(WARMUP_S)
            first, t0 = host.entries_added(), time.monotonic()
            time.sleep(WINDOW_S)
            last, t1 = host.entries_added(), time.monotonic()
            achieved = (last - first) / (t1 - t0)
            print(f"{rate:>9} {achieved:>12.1f} {achieved / rate:>6.2f}")
    finally:
        host.write_file(ENV_FILE, original)
        host.cycle()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rates", default="10,1000,4000,8000,12000")
    args = parser.parse_args()
    print(f"in-process, no I/O: {in_process(args.events)}")
    config = load_config()
    record = hosts.read_record(config, config.host_name(1))
    if os.geteuid() != 0 or record is None:
        print("lab host: skipped (the lab is not up, or not root: run `make lab-up` first)")
        return 0
    host = LabHost(config, record.spec.name, record.spec.address)
    on_lab_host(host, [int(rate) for rate in args.rates.split(",")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
