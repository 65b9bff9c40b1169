"""Scale benchmark (issue 15, item 4): canary, rollback and one monitor check on a lab of 1, 3,
10 and 20 hosts, with the real playbooks (figures, not a test).

For each size the lab is brought to N hosts (lab-up's own code: only the new hosts boot), what
a lab host costs is read from its processes (memory: PSS of the nspawn's process tree, and
the machine's used memory before and after the boot; CPU over 10 s with the engine at its lab
rate), then, each repetition from hosts reset with the engine at 100 events/s (FAST), command
to end:
  canary 1 batch   canary.yml -e canary_serial=N (every host in one batch)
  monitor check    monitor_check.yml with the extravars `model-safety monitor` gives it
  rollback         rollback.yml (every host, one command)
  canary batches   canary.yml -e '{"canary_serial": [1, "25%", "100%"]}'
  rollback         again
A timing callback (bench/callback_plugins) gives each task's time, so the gate's wait for events
and the role proof's wait are reported apart, and the 1-host canary per phase (issue 15, item 2).
It prints a table (min / median seconds), a least-squares fit t = a + b*N per operation and
what it predicts for 200 hosts, and puts the lab back at its previous size, hosts reset.

    make bench-fleet     (or: .venv/bin/python bench/fleet.py [--sizes 1,3,10,20] [--repeat 2])

It resizes the lab, so `make bench` does not run it. Root and the lab's requirements needed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT / "lab"), str(REPO_ROOT)]

from labctl import lab  # noqa: E402
from labctl.config import load_config  # noqa: E402
from labctl.processes import lab_processes  # noqa: E402
from labctl.remote import LabHost  # noqa: E402
from tests.integration.lab_activation import Run, fresh_all, playbook  # noqa: E402

CALLBACK_DIR = REPO_ROOT / "bench" / "callback_plugins"
BATCH_LIST = [1, "25%", "100%"]
# The forks of ansible.cfg.
FORKS = 20
PROJECTED = 200
GATE_TASK = "Run the quality gate (read-only)"
PROOF_TASK = "Prove the model's role from the events and trade_intents rows after the start"
# engine_change: env file + drop-in, daemon-reload, stop + start, settle and journal proof.
CHANGE_TASK = "Change the env file and the drop-in, stop + start, and prove the new start"
WAITS = ("gate wait", "proof wait")
IDLE_WINDOW_S = 10.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
OPERATIONS = ("canary 1 batch", "canary batches", "rollback", "monitor check")
PHASE_BY_FILE = {
    "request.yml": "validate + plan (controller)",
    "canary.yml": "validate + plan (controller)",
    "lease.yml": "lease",
    "release.yml": "lease",
    "preflight.yml": "preflight",
    "backup.yml": "backup",
    "change.yml": "record + summary",
    "summary.yml": "record + summary",
}
PHASE_BY_ROLE = {
    "model_gate": "gate (reports, verdict)",
    "ai_engine_verify": "proof plan",
}


# Timed runs -----------------------------------------------------------------------------
def phase_of(task: dict) -> str:
    name = task["name"].split(" : ", 1)[-1]
    if name == GATE_TASK:
        return "gate wait"
    if name == PROOF_TASK:
        return "proof wait"
    if name == CHANGE_TASK:
        return "change, stop + start, start proof"
    path = Path(task["path"].rsplit(":", 1)[0])
    role = path.parts[-3] if len(path.parts) >= 3 and path.parts[-4:-3] == ("roles",) else ""
    return PHASE_BY_ROLE.get(role) or PHASE_BY_FILE.get(path.name) or f"other ({path.name})"


class MemorySampler(threading.Thread):
    """The controller's ansible-playbook processes (the run and its forks): their summed PSS,
    sampled every second; the peak is kept."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_mib = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(1.0):
            pids = [pid for pid, argv in _processes() if b"ansible-playbook" in argv]
            self.peak_mib = max(self.peak_mib, sum(map(pss_mib, pids)))


def timed(name: str, *args: str) -> dict:
    """One playbook run with the timing callback: its wall time, phases, controller cost."""
    with tempfile.NamedTemporaryFile(suffix=".json") as timing:
        os.environ.update(
            ANSIBLE_CALLBACKS_ENABLED="bench_timing",
            ANSIBLE_CALLBACK_PLUGINS=str(CALLBACK_DIR),
            BENCH_TIMING_FILE=timing.name,
        )
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        sampler = MemorySampler()
        sampler.start()
        launched = time.time()
        run: Run = playbook(name, *args, timeout=1800)
        sampler.done.set()
        sampler.join()
        cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        text = Path(timing.name).read_text()
    phases: dict[str, float] = {}
    if text:
        record = json.loads(text)
        tasks = record["tasks"]
        starts = [task["start"] for task in tasks] + [record["end"]]
        phases["ansible start-up"] = (starts[0] if tasks else record["end"]) - launched
        for task, start, end in zip(tasks, starts, starts[1:], strict=False):
            phases[phase_of(task)] = phases.get(phase_of(task), 0.0) + end - start
        phases["ansible exit"] = max(0.0, run.seconds - (record["end"] - launched))
    controller_cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (
        cpu_before.ru_utime + cpu_before.ru_stime
    )
    return {
        "ok": run.returncode == 0,
        "seconds": run.seconds,
        "phases": {key: round(value, 2) for key, value in phases.items()},
        "controller_cpu_s": round(controller_cpu, 2),
        "controller_peak_mib": round(sampler.peak_mib, 1),
        "tail": "" if run.returncode == 0 else run.output[-1500:],
    }


def monitor_check_args() -> tuple[str, ...]:
    """monitor_check.yml's extravars as the monitor's first check gives them (loop._check)."""
    extravars = {
        "monitor_model": "patchtst",
        "monitor_after": {},
        "monitor_window_events": 1000,
        "monitor_records": {},
    }
    return ("-e", json.dumps(extravars))


def operations(size: int, gate_wait: int) -> list[tuple[str, str, tuple[str, ...]]]:
    canary = ("-e", "model=patchtst", "-e", f"canary_gate_wait={gate_wait}")
    rollback = ("-e", "reason=bench/fleet.py")
    return [
        ("canary 1 batch", "canary.yml", (*canary, "-e", f"canary_serial={size}")),
        ("monitor check", "monitor_check.yml", monitor_check_args()),
        ("rollback", "rollback.yml", rollback),
        (
            "canary batches",
            "canary.yml",
            (*canary, "-e", json.dumps({"canary_serial": BATCH_LIST})),
        ),
        ("rollback", "rollback.yml", rollback),
    ]


# What a lab host costs ------------------------------------------------------------------
def _processes() -> list[tuple[int, bytes]]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found.append((int(entry.name), (entry / "cmdline").read_bytes()))
            except OSError:
                continue
    return found


def _stat_fields(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def pss_mib(pid: int) -> float:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0.0
    return sum(int(line.split()[1]) for line in text.splitlines() if line.startswith("Pss:")) / 1024


def cpu_ticks(pid: int) -> int:
    fields = _stat_fields(pid)
    return int(fields[11]) + int(fields[12]) if fields else 0


def host_trees() -> dict[str, list[int]]:
    """Each lab host's processes: its nspawn and every descendant."""
    children: dict[int, list[int]] = {}
    for pid, _ in _processes():
        fields = _stat_fields(pid)
        if fields:
            children.setdefault(int(fields[1]), []).append(pid)
    trees = {}
    for proc in lab_processes():
        if proc.kind == "nspawn":
            tree, todo = [], [proc.pid]
            while todo:
                pid = todo.pop()
                tree.append(pid)
                todo.extend(children.get(pid, []))
            trees[proc.machine] = tree
    return trees


def used_mib() -> float:
    info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return (int(info["MemTotal"].split()[0]) - int(info["MemAvailable"].split()[0])) / 1024


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine so far (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def idle_cost(hosts: list[LabHost]) -> dict:
    """Hosts reset to the lab's own env (its engine rate), settled; then memory and CPU."""
    with ThreadPoolExecutor(len(hosts)) as pool:
        list(pool.map(LabHost.reset, hosts))
    time.sleep(5)
    trees = host_trees()
    ticks = {pid: cpu_ticks(pid) for pids in trees.values() for pid in pids}
    busy0, total0 = machine_busy()
    time.sleep(IDLE_WINDOW_S)
    busy1, total1 = machine_busy()
    # Only the processes that ran the whole window (one that ended took its ticks along).
    after = {pid: cpu_ticks(pid) for pid in ticks}
    cpu = {
        name: sum(max(0, after[pid] - ticks[pid]) for pid in pids if after[pid] and ticks[pid])
        / CLK_TCK
        / IDLE_WINDOW_S
        * 100
        for name, pids in trees.items()
    }
    pss = {name: sum(map(pss_mib, pids)) for name, pids in trees.items()}
    return {
        "host_pss_mib": round(statistics.mean(pss.values()), 1),
        "host_cpu_pct": round(statistics.mean(cpu.values()), 2),
        "machine_busy_pct": round((busy1 - busy0) / (total1 - total0) * 100 * os.cpu_count(), 1),
        "used_mib": round(used_mib(), 1),
    }


# The lab --------------------------------------------------------------------------------
def resize(size: int) -> tuple[list[LabHost], dict]:
    """The lab at ``size`` hosts (lab-up: the new ones boot, the rest stay)."""
    os.environ["LAB_HOSTS"] = str(size)
    # Ten hosts booting at once on 2 cores take longer than lab-up's default allows one host.
    os.environ.setdefault("LAB_BOOT_TIMEOUT", "300")
    config = load_config(os.environ)
    before, started = used_mib(), time.monotonic()
    records = [record for record, _ in lab.up(config)]
    boot = {
        "boot_s": round(time.monotonic() - started, 1),
        "used_before_mib": round(before, 1),
        "used_after_mib": round(used_mib(), 1),
    }
    return [LabHost(config, r.spec.name, r.spec.address) for r in records], boot


def running_size() -> int:
    return len({proc.machine for proc in lab_processes() if proc.kind == "nspawn"})


def restore(size: int) -> None:
    print(f"\nputting the lab back at {size} host(s), reset", flush=True)
    if size == 0:
        lab.down(load_config(os.environ))
        return
    hosts, _ = resize(size)
    with ThreadPoolExecutor(len(hosts)) as pool:
        list(pool.map(LabHost.reset, hosts))


# Figures --------------------------------------------------------------------------------
def samples(results: dict, operation: str) -> dict[int, list[float]]:
    """Seconds per size of an operation; "<op>: <phase>" rows are a phase's seconds, and
    "<op>: excl. waits" the total without the gate's and the proof's waits."""
    op, _, part = operation.partition(": ")
    found: dict[int, list[float]] = {}
    for size, entry in results.items():
        for run in entry["runs"]:
            if run["operation"] != op or not run["ok"]:
                continue
            if part == "excl. waits":
                value = run["seconds"] - sum(run["phases"].get(w, 0.0) for w in WAITS)
            elif part == "controller CPU s":
                value = run["controller_cpu_s"]
            elif part == "controller peak MiB":
                value = run["controller_peak_mib"]
            elif part:
                value = run["phases"].get(part, 0.0)
            else:
                value = run["seconds"]
            found.setdefault(int(size), []).append(value)
    return found


def batch_waves(size: int, serial: list, forks: int) -> int:
    """How many fork waves Ansible runs a task in for ``size`` hosts in ``serial`` batches."""
    waves, left, index = 0, size, 0
    while left > 0:
        spec = serial[min(index, len(serial) - 1)]
        batch = int(size * int(spec[:-1]) / 100) if isinstance(spec, str) else spec
        batch = min(max(batch, 1), left)
        waves += math.ceil(batch / forks)
        left -= batch
        index += 1
    return waves


def print_report(results: dict) -> None:
    sizes = sorted(int(size) for size in results)
    rows = [
        "canary 1 batch",
        "canary 1 batch: gate wait",
        "canary 1 batch: proof wait",
        "canary 1 batch: excl. waits",
        "canary batches",
        "canary batches: gate wait",
        "canary batches: proof wait",
        "canary batches: excl. waits",
        "rollback",
        "monitor check",
    ]
    rows += [f"{op}: controller {what}" for what in ("CPU s", "peak MiB") for op in OPERATIONS]
    print("\n== seconds, command to end (min / median of the runs)")
    print(f"{'operation':<36}" + "".join(f"{f'{n} host(s)':>16}" for n in sizes))
    for row in rows:
        found = samples(results, row)
        cells = [
            f"{min(found[n]):>7.1f} /{statistics.median(found[n]):>6.1f}" if found.get(n) else "-"
            for n in sizes
        ]
        print(f"{row:<36}" + "".join(f"{cell:>16}" for cell in cells))

    print(
        f"\n== growth: least squares t = a + b*N over every run; {PROJECTED} hosts predicted with "
        f"forks=N (a + b*{PROJECTED}) and forks={FORKS} (the part of a that is not Ansible's "
        "start-up or a wait for events repeated for every wave of forks)"
    )
    print(f"{'operation':<36}{'a s':>8}{'b s/host':>10}{'200, forks=N':>14}{'200, forks=20':>15}")
    for row in rows:
        found = samples(results, row)
        op = row.partition(": ")[0]
        batched = op == "canary batches"
        points = [(n, t) for n, ts in found.items() for t in ts if not (batched and n < 3)]
        if len({n for n, _ in points}) < 2:
            continue
        b, a = np.polyfit([n for n, _ in points], [t for _, t in points], 1)
        ok_runs = [
            run for entry in results.values() for run in entry["runs"]
            if run["operation"] == op and run["ok"]
        ]  # fmt: skip
        startup = statistics.median(run["phases"].get("ansible start-up", 0.0) for run in ok_runs)
        waits = statistics.median(sum(run["phases"].get(w, 0.0) for w in WAITS) for run in ok_runs)
        serial = BATCH_LIST if batched else [PROJECTED]
        measured_waves = len(BATCH_LIST) if batched else 1
        by_n = a + b * PROJECTED
        if row.endswith("MiB"):
            by_20 = a + b * min(FORKS, PROJECTED)  # one process per fork at the most
        elif row.endswith(("CPU s", "wait")):
            # CPU seconds are work, not waves; the first wave of a batch waits for the events,
            # the later ones find them there already.
            by_20 = by_n
        else:
            # Ansible start-up and the waits once; every other fixed cost once per fork wave.
            once = {"": startup + waits, "excl. waits": startup}.get(row.partition(": ")[2], 0.0)
            scale = batch_waves(PROJECTED, serial, FORKS) / measured_waves
            by_20 = once + (a - once) * scale + b * PROJECTED
        print(f"{row:<36}{a:>8.2f}{b:>10.3f}{by_n:>14.0f}{by_20:>15.0f}")

    print("\n== what a lab host costs (engine at the lab's rate, settled; means over the hosts)")
    print(f"{'hosts':>6}{'boot s':>8}{'used MiB':>10}{'MiB/added host':>16}{'PSS MiB/host':>14}"
          f"{'CPU %/host':>12}{'machine busy % of a core':>26}")  # fmt: skip
    previous = None
    for n in sizes:
        boot, idle = results[str(n)]["boot"], results[str(n)]["idle"]
        per_added = "-"
        if previous is not None and n > previous[0]:
            per_added = f"{(idle['used_mib'] - previous[1]) / (n - previous[0]):.0f}"
        print(
            f"{n:>6}{boot['boot_s']:>8.1f}{idle['used_mib']:>10.0f}{per_added:>16}"
            f"{idle['host_pss_mib']:>14.0f}{idle['host_cpu_pct']:>12.2f}"
            f"{idle['machine_busy_pct']:>26.1f}"
        )
        previous = (n, idle["used_mib"])

    one = results.get("1")
    canaries = [r for r in (one or {}).get("runs", []) if r["operation"] == "canary 1 batch"]
    canaries = [r for r in canaries if r["ok"]]
    if canaries:
        print("\n== canary on 1 host, per phase (seconds; each run)")
        names = list(dict.fromkeys(p for run in canaries for p in run["phases"]))
        for name in names:
            values = "".join(f"{run['phases'].get(name, 0.0):>8.2f}" for run in canaries)
            print(f"{name:<32}{values}")
        totals = "".join(f"{run['seconds']:>8.1f}" for run in canaries)
        excl = "".join(
            f"{run['seconds'] - sum(run['phases'].get(w, 0.0) for w in WAITS):>8.1f}"
            for run in canaries
        )
        print(f"{'total':<32}{totals}\n{'total excluding the two waits':<32}{excl}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,3,10,20")
    parser.add_argument(
        "--repeat", default="2", help="runs of each operation: one number, or one per size"
    )
    parser.add_argument("--gate-wait", type=int, default=30)
    parser.add_argument("--out", default=str(REPO_ROOT / "reports" / "bench_fleet.json"))
    parser.add_argument("--report", help="only print the report of a saved --out file")
    args = parser.parse_args()
    if args.report:
        print_report(json.loads(Path(args.report).read_text()))
        return 0
    if os.geteuid() != 0:
        print("bench/fleet.py needs root and the lab (it resizes it): skipped")
        return 0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = running_size()
    results: dict = {}
    try:
        sizes = [int(n) for n in args.sizes.split(",")]
        repeats = [int(n) for n in args.repeat.split(",")]
        repeats = repeats * len(sizes) if len(repeats) == 1 else repeats
        for size, repeat in zip(sizes, repeats, strict=True):
            print(f"\n== {size} host(s)", flush=True)
            hosts, boot = resize(size)
            entry = results[str(size)] = {"boot": boot, "idle": idle_cost(hosts), "runs": []}
            print(f"boot {boot}, idle {entry['idle']}", flush=True)
            for repetition in range(repeat):
                fresh_all(hosts)
                for operation, name, extra in operations(size, args.gate_wait):
                    run = {"operation": operation, "repetition": repetition}
                    run.update(timed(name, *extra))
                    entry["runs"].append(run)
                    out.write_text(json.dumps(results, indent=1))
                    print(
                        f"{size:>3} {operation:<16} {run['seconds']:>7.1f} s "
                        f"{'ok' if run['ok'] else 'FAILED'} {run['phases']}"
                        + (f"\n    {run['tail']}" if run["tail"] else ""),
                        flush=True,
                    )
                    if not run["ok"]:
                        fresh_all(hosts)
    finally:
        restore(previous)
    print_report(results)
    print(f"\nevery run: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
