"""Every role's molecule scenario (tests/molecule/<role>), run for real against the lab hosts.

`molecule test -s <name>` from tests/ for every scenario directory but `shared`, in parallel
lanes: one lane per host of MOLECULE_LAB_HOSTS (default: the test lane's lab hosts); a lane runs its
scenarios one after another with MOLECULE_LAB_HOST=<its host>, so no two scenarios ever share
a host (each scenario resets its host in create and destroy).

Molecule keeps a scenario's state (state.yml, its inventory, what converge leaves for verify) in
an ephemeral directory, by default ~/.ansible/tmp/molecule.<hash of the project directory's
NAME>.<scenario>: distinct per scenario, but shared by every checkout whose molecule project
directory is called tests/ (another clone running the same scenario at the same time) and by
every scenario when MOLECULE_EPHEMERAL_DIRECTORY is inherited. So each run gets its own,
MOLECULE_EPHEMERAL_DIRECTORY=<pytest tmp>/<scenario>, and the test checks that each scenario
wrote its state there and nowhere else.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

TESTS_DIR = Path(__file__).resolve().parents[1]
MOLECULE_DIR = TESTS_DIR / "molecule"
VENV_BIN = Path(sys.executable).parent
SCENARIO_TIMEOUT = 300
TAIL_LINES = 60
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|\x1b\]8;;[^\x1b]*\x1b\\")


@dataclass
class Outcome:
    scenario: str
    host: str
    ephemeral: Path
    returncode: int | None  # None: killed after SCENARIO_TIMEOUT
    seconds: float
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self) -> str:
        return "\n".join(self.output.splitlines()[-TAIL_LINES:])


def scenarios() -> list[str]:
    return sorted(
        path.parent.name
        for path in MOLECULE_DIR.glob("*/molecule.yml")
        if path.parent.name != "shared"
    )


def lab_hosts(default: list[str]) -> list[str]:
    value = os.environ.get("MOLECULE_LAB_HOSTS") or ",".join(default)
    hosts = [host.strip() for host in value.split(",") if host.strip()]
    assert hosts, "MOLECULE_LAB_HOSTS names no host"
    assert len(set(hosts)) == len(hosts), f"MOLECULE_LAB_HOSTS names a host twice: {hosts}"
    return hosts


def run_scenario(scenario: str, host: str, ephemeral: Path) -> Outcome:
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MOLECULE_LAB_HOST": host,
        "MOLECULE_EPHEMERAL_DIRECTORY": str(ephemeral),
        "NO_COLOR": "1",
        "PY_COLORS": "0",
        "ANSIBLE_FORCE_COLOR": "0",
    }
    started = time.monotonic()
    # A session of its own, so a timeout ends molecule and every ansible-playbook under it.
    process = subprocess.Popen(
        [str(VENV_BIN / "molecule"), "test", "-s", scenario],
        cwd=TESTS_DIR,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=SCENARIO_TIMEOUT)
        returncode: int | None = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        output += f"\n[test_molecule] killed after {SCENARIO_TIMEOUT} s"
        returncode = None
    return Outcome(
        scenario, host, ephemeral, returncode, time.monotonic() - started, ANSI.sub("", output)
    )


def run_lane(host: str, names: list[str], ephemeral_root: Path) -> list[Outcome]:
    return [run_scenario(name, host, ephemeral_root / name) for name in names]


def test_every_molecule_scenario(lab, capsys, tmp_path: Path) -> None:
    names = scenarios()
    assert len(names) >= 10, f"expected a scenario per role, found {names}"
    hosts = lab_hosts([host.name for host in lab.hosts])
    # Round robin over the lanes; a lane never has more than one scenario on its host at once.
    lanes = {host: names[index :: len(hosts)] for index, host in enumerate(hosts)}
    lanes = {host: lane for host, lane in lanes.items() if lane}

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(lanes)) as pool:
        futures = [pool.submit(run_lane, host, lane, tmp_path) for host, lane in lanes.items()]
        outcomes = [outcome for future in futures for outcome in future.result()]
    total = time.monotonic() - started

    with capsys.disabled():
        print(f"\nmolecule: {len(outcomes)} scenarios in {len(lanes)} lanes, {total:.1f} s wall")
        for outcome in sorted(outcomes, key=lambda o: o.scenario):
            status = "ok" if outcome.ok else ("TIMEOUT" if outcome.returncode is None else "FAILED")
            print(f"  {outcome.scenario:<22} {outcome.host:<8} {outcome.seconds:6.1f} s  {status}")

    failed = [outcome for outcome in outcomes if not outcome.ok]
    assert not failed, "failed molecule scenarios:\n" + "\n\n".join(
        f"=== {o.scenario} on {o.host} "
        f"({'timeout' if o.returncode is None else f'rc {o.returncode}'}, {o.seconds:.1f} s), "
        f"last {TAIL_LINES} lines:\n{o.tail()}"
        for o in failed
    )

    # Each scenario kept its state in its own ephemeral directory, and only there.
    assert len({outcome.ephemeral for outcome in outcomes}) == len(outcomes)
    for outcome in outcomes:
        assert (outcome.ephemeral / "state.yml").is_file(), (
            f"{outcome.scenario}: molecule kept no state in {outcome.ephemeral}"
        )
