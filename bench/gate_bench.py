"""The quality gate on large windows: time against the floor, peak memory, plain baseline.

One run, on a private redis-server (a free port of 127.0.0.1, nothing on disk) that this
script starts and stops. The stream is filled with the reference engine's own events (lab
default: every model healthy, patchtst in shadow mode; a pool of distinct events repeated
with fresh ids and timestamps) up to each size, and then, for each size:

* floor: reading the whole window with redis-py ``xrange`` pages (hiredis when installed, no
  JSON parsing), in this process, best of ``--repeat``; "floor proc" is the same read as a
  fresh Python process (interpreter start and ``import redis`` included);
* gate: ``model-safety gate --count N --json --no-report`` as a process: wall time and peak
  RSS (``wait4``), best of ``--repeat`` (one run for 1M);
* plain: ``bench/plain_gate.py`` (per event, ``json.loads``, plain Python rules) likewise;
* in-process split of the gate: ``read_window`` (read + parse) and ``evaluate`` (rules),
  and of the rules what the HTML charts' statistics take: every model's confidence
  histogram and agreement over time (``bins s``, part of ``rules s``).

    make bench      (or: .venv/bin/python bench/gate_bench.py [--sizes 10000,100000,1000000])
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import redis

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "lab" / "engine"))
sys.path.insert(0, str(REPO_ROOT / "module_utils"))

from ai_engine.config import load_config  # noqa: E402
from ai_engine.engine import Engine  # noqa: E402
from ai_engine.events import format_timestamp  # noqa: E402
from model_safety.judgement.gate import evaluate  # noqa: E402
from model_safety.telemetry.events import EventWindow  # noqa: E402
from model_safety.telemetry.metrics import (  # noqa: E402
    confidence_histogram,
    hard_disagreement,
    over_time,
)
from model_safety.telemetry.stream import read_window  # noqa: E402
from tests.redis_server import free_port, server_argv  # noqa: E402

STREAM = "bench:gate"
PAGE = 2000
POOL = 20_000
STEP_MS = 100
BASE = datetime(2026, 1, 10, tzinfo=UTC)
BASE_MS = int(BASE.timestamp() * 1000)
FILL_BATCH = 5000
START_TIMEOUT_S = 10.0

FLOOR_SCRIPT = """
import sys, time, redis
url, stream, page = sys.argv[1], sys.argv[2], int(sys.argv[3])
client = redis.Redis.from_url(url)
start, n = "-", 0
while True:
    rows = client.xrange(stream, min=start, max="+", count=page)
    n += len(rows)
    if len(rows) < page:
        break
    start = "(" + rows[-1][0].decode()
print(n)
"""


def start_redis(workdir: str) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (Debian package redis-server)")
    port = free_port()
    process = subprocess.Popen(server_argv(binary, port, Path(workdir)))
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            client.ping()
            return process, url
        except redis.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise SystemExit("redis-server did not start") from None
            time.sleep(0.05)


def engine_pool(size: int) -> list[tuple[str, str]]:
    """``size`` distinct engine events as (timestamp text, payload JSON)."""
    config = load_config({"ENGINE_SEED": "7", "PATCHTST_SHADOW_ONLY": "true"})
    engine = Engine(config)
    pool = []
    for index in range(size):
        moment = BASE + timedelta(milliseconds=index * STEP_MS)
        event = engine.step(index * STEP_MS / 1000.0, moment)
        pool.append((format_timestamp(moment), event.json))
    return pool


def fill(client: redis.Redis, pool: list[tuple[str, str]], start: int, stop: int) -> None:
    """XADD events ``start`` .. ``stop - 1`` with ids ``BASE_MS + i * STEP_MS``."""
    pipe = client.pipeline(transaction=False)
    for index in range(start, stop):
        stamp, payload = pool[index % len(pool)]
        moment_ms = BASE_MS + index * STEP_MS
        if index >= len(pool):
            moment = BASE + timedelta(milliseconds=index * STEP_MS)
            payload = payload.replace(stamp, format_timestamp(moment), 1)
        pipe.xadd(STREAM, {"payload": payload}, id=f"{moment_ms}-0")
        if (index - start) % FILL_BATCH == FILL_BATCH - 1:
            pipe.execute()
    pipe.execute()


def floor(client: redis.Redis) -> tuple[float, int]:
    """Seconds to read the whole stream with redis-py xrange pages (no parsing)."""
    began = time.perf_counter()
    start, count = "-", 0
    while True:
        rows = client.xrange(STREAM, min=start, max="+", count=PAGE)
        count += len(rows)
        if len(rows) < PAGE:
            break
        start = "(" + rows[-1][0].decode()
    return time.perf_counter() - began, count


# Peak RSS comes from wait4 in a tiny runner process: a child forked from this (large) bench
# process would report this process's RSS as its own high-water mark (Linux counts the image
# it had before exec). The runner forks at ~10 MB, so that is the floor of the figure.
RUNNER = """
import json, os, sys, time
began = time.perf_counter()
pid = os.posix_spawnp(sys.argv[1], sys.argv[1:], os.environ)
_pid, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - began
print(json.dumps([wall, usage.ru_maxrss, os.waitstatus_to_exitcode(status)]), file=sys.stderr)
"""


def run_process(argv: list[str]) -> tuple[float, float, int, str]:
    """(wall s, peak RSS MB, exit code, stdout) of one process, measured with wait4."""
    with tempfile.TemporaryFile() as out:
        done = subprocess.run(
            [sys.executable, "-S", "-c", RUNNER, *argv],
            stdout=out,
            stderr=subprocess.PIPE,
            check=False,
        )
        out.seek(0)
        stdout = out.read().decode()
    stderr = done.stderr.decode(errors="replace").strip().splitlines()
    try:
        wall, max_rss_kb, code = json.loads(stderr[-1])
    except (IndexError, ValueError):
        raise SystemExit(f"{argv[0]} could not be measured: {stderr[-20:]}") from None
    if code not in (0, 2, 3):
        raise SystemExit(f"{argv[0]} failed ({code}): {chr(10).join(stderr[-20:])}")
    return wall, max_rss_kb / 1024.0, code, stdout


def chart_statistics(window: EventWindow) -> float:
    """Seconds for every model's confidence histogram and agreement over time, as
    ``model_metrics`` computes them (its active-event columns included)."""
    began = time.perf_counter()
    for columns in window.models.values():
        active = columns.active
        action, side = columns.action[active], window.side[active]
        confidence_histogram(columns.confidence[active])
        over_time(window, active, action == side, hard_disagreement(action, side))
    return time.perf_counter() - began


def best(argv: list[str], repeat: int) -> tuple[float, float, dict[str, Any]]:
    runs = [run_process(argv) for _ in range(repeat)]
    wall = min(r[0] for r in runs)
    rss = max(r[1] for r in runs)
    return wall, rss, json.loads(runs[-1][3])


def gate_argv(url: str, count: int) -> list[str]:
    script = Path(sys.executable).with_name("model-safety")
    head = [str(script)] if script.exists() else [sys.executable, "-m", "model_safety.cli"]
    return [*head, "gate", "--count", str(count), "--json", "--no-report", "--redis-url", url,
            "--stream", STREAM]  # fmt: skip


def environment() -> str:
    versions = []
    for dist in ("redis", "hiredis", "numpy"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{dist} -")
    server = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=False
    ).stdout.split()
    server_version = next((w[2:] for w in server if w.startswith("v=")), "?")
    return (
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{', '.join(versions)}, redis-server {server_version}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size below 1M (best)")
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    print(environment())
    with tempfile.TemporaryDirectory(prefix="gate-bench-") as workdir:
        server, url = start_redis(workdir)
        try:
            client = redis.Redis.from_url(url)
            began = time.perf_counter()
            pool = engine_pool(min(POOL, sizes[-1]))
            print(f"engine events: {len(pool)} distinct in {time.perf_counter() - began:.1f} s")
            header = (
                f"{'events':>9} {'floor s':>8} {'floor proc s':>12} {'gate s':>7} "
                f"{'gate/floor':>10} {'gate/floor proc':>15} {'plain s':>8} {'plain/gate':>10} "
                f"{'events/s':>10} {'peak RSS MB':>11} {'plain RSS MB':>12} "
                f"{'read+parse s':>12} {'rules s':>7} {'bins s':>7}  verdict (gate/plain)"
            )
            rows = []
            filled = 0
            for size in sizes:
                fill(client, pool, filled, size)
                filled = size
                repeat = 1 if size >= 1_000_000 else max(1, args.repeat)
                floor_s = min(floor(client)[0] for _ in range(repeat))
                floor_proc = min(
                    run_process([sys.executable, "-c", FLOOR_SCRIPT, url, STREAM, str(PAGE)])[0]
                    for _ in range(repeat)
                )
                gate_s, gate_rss, gate = best(gate_argv(url, size), repeat)
                plain_argv = [sys.executable, str(REPO_ROOT / "bench" / "plain_gate.py")]
                plain_argv += ["--redis-url", url, "--stream", STREAM, "--count", str(size)]
                plain_s, plain_rss, plain = best(plain_argv, 1 if size >= 100_000 else repeat)
                began = time.perf_counter()
                window = read_window(client, STREAM, count=size)
                read_s = time.perf_counter() - began
                began = time.perf_counter()
                evaluate(window)
                rules_s = time.perf_counter() - began
                bins_s = min(chart_statistics(window) for _ in range(max(1, args.repeat)))
                del window
                if gate.get("event_count") != size:
                    raise SystemExit(f"the gate saw {gate.get('event_count')} events, not {size}")
                rows.append(
                    f"{size:>9} {floor_s:>8.3f} {floor_proc:>12.3f} {gate_s:>7.3f} "
                    f"{gate_s / floor_s:>10.2f} {gate_s / floor_proc:>15.2f} {plain_s:>8.3f} "
                    f"{plain_s / gate_s:>10.2f} {size / gate_s:>10.0f} {gate_rss:>11.1f} "
                    f"{plain_rss:>12.1f} {read_s:>12.3f} {rules_s:>7.3f} {bins_s:>7.3f}  "
                    f"{gate.get('verdict')}/{plain.get('verdict')}"
                )
                print(f"  {size} events measured", flush=True)
            print(header)
            print("\n".join(rows))
            print(
                "floor: redis-py xrange pages of 2000 in-process; gate and plain: wall time of the "
                "whole process (interpreter start, imports, read, parse, rules, JSON out)."
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
