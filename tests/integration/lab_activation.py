"""What the activation playbooks' lab tests share: running a playbook as an operator does,
and reading back everything an activation may touch on a lab host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from labctl.config import REPO_ROOT
from labctl.remote import DROPIN_DIR, ENV_FILE, LabHost
from tests.installed_collection import InstalledCollection

ANSIBLE_BIN = Path(sys.executable).parent
LOG = "/var/log/quantum/qsc_canary.jsonl"
BACKUPS = "/opt/quantum/backups/model_activations"
LEASE = "/var/lib/model-safety/activation.lease"
CANARY_DROPIN = f"{DROPIN_DIR}/qsc_canary.conf"
FAST = {"ENGINE_RATE": "100"}
# DESIGN.md "Canary weights": patchtst at 0.10.
DESIGN_WEIGHTS = "xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:0.1"
# The preflight wants a settled engine; the tests' fresh starts are settled after 1 s.
SETTLED = (
    "-e",
    "model_activation_min_uptime=1",
    # The settle watch (no restart of a new start) is covered by the engine_cycle tests; 1 s
    # here keeps every stop + start of these tests short.
    "-e",
    "model_activation_cycle_settle=1",
)


@dataclass
class Run:
    """A finished run; ``output`` has its whitespace collapsed, as YAML output wraps lines."""

    returncode: int
    output: str
    seconds: float


def controller(
    collection: InstalledCollection | None = None,
) -> tuple[list[str], Path, dict[str, str]]:
    """How Ansible is run: the argv prefix, directory and environment. From the checkout with its
    ansible.cfg, as an operator of the checkout runs it; with ``collection``, from outside the
    checkout on the lab's inventory, seeing only the installed collection."""
    if collection is None:
        return [], REPO_ROOT, {**os.environ, "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg")}
    return ["-i", str(REPO_ROOT / "inventory" / "lab")], collection.cwd, collection.env


def playbook(
    name: str, *args: str, timeout: float = 600, collection: InstalledCollection | None = None
) -> Run:
    """ansible-playbook playbooks/NAME ARGS from the checkout, as an operator runs it; with
    ``collection``, the installed collection's playbook of that name by its FQCN."""
    prefix, cwd, env = controller(collection)
    target = f"playbooks/{name}" if collection is None else collection.fqcn(Path(name).stem)
    started = time.monotonic()
    result = subprocess.run(
        [str(ANSIBLE_BIN / "ansible-playbook"), *prefix, target, *SETTLED, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
        check=False,
    )
    output = " ".join((result.stdout + result.stderr).split())
    return Run(result.returncode, output, round(time.monotonic() - started, 1))


def canary_after(cutover: str, *args: str) -> Run:
    """canary.yml for patchtst whose gate reads only the events after ``cutover`` (the fast
    events before a slow start)."""
    return playbook(
        "canary.yml", "-e", "model=patchtst", "-e", f"model_gate_after={cutover}", *args
    )


def start_playbook(name: str, *args: str) -> subprocess.Popen[str]:
    """ansible-playbook playbooks/NAME ARGS started in its own session (so a test can kill it
    whole), its output (stderr included) readable line by line from ``stdout``."""
    _, cwd, env = controller()
    return subprocess.Popen(
        [str(ANSIBLE_BIN / "ansible-playbook"), f"playbooks/{name}", *SETTLED, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )


def ansible_module(
    host: str, module: str, args: dict, collection: InstalledCollection | None = None
) -> subprocess.CompletedProcess[str]:
    """The checkout's MODULE on ``host``; with ``collection``, the collection's by its FQCN."""
    prefix, cwd, env = controller(collection)
    name = module if collection is None else collection.fqcn(module)
    return subprocess.run(
        [str(ANSIBLE_BIN / "ansible"), *prefix, host, "-m", name, "-a", json.dumps(args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=False,
    )


def snapshot(host: LabHost) -> dict:
    """Everything an activation may touch on the host."""
    dropins = host.out("ls", "-1", DROPIN_DIR).split()
    return {
        "env": host.read_file(ENV_FILE),
        "env_stat": host.out("stat", "-c", "%a %U:%G", ENV_FILE),
        "dropins": {name: host.read_file(f"{DROPIN_DIR}/{name}") for name in dropins},
        "invocation": host.invocation(),
        "backups": host.out("sh", "-c", f"ls {BACKUPS} 2>/dev/null || true").split(),
        "log": host.run("cat", LOG, check=False).stdout,
        "lease": host.run("cat", LEASE, check=False).stdout,
    }


def log_records(host: LabHost) -> list[dict]:
    return [json.loads(line) for line in host.run("cat", LOG, check=False).stdout.splitlines()]


def fresh_all(hosts: list[LabHost], **env: str) -> dict[str, dict]:
    """fresh() of every host at once; their snapshots by name."""
    with ThreadPoolExecutor(len(hosts)) as pool:
        snapshots = list(pool.map(lambda host: fresh(host, **env), hosts))
    return {host.name: snapshot for host, snapshot in zip(hosts, snapshots, strict=True)}


def fresh(host: LabHost, **env: str) -> dict:
    """Reset the host (fast engine plus ``env``), let it settle; return its snapshot."""
    host.reset({**FAST, **env})
    time.sleep(1)
    return snapshot(host)
