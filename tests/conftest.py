"""Shared fixtures: a real redis-server (tests.redis_server) and the real lab hosts."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from labctl import hosts as lab_hosts
from labctl.config import REPO_ROOT, LabConfig, load_config
from labctl.remote import DROPIN_DIR, ENV_FILE, TEST_DROPIN_PREFIX, LabHost

pytest_plugins = ["tests.redis_server"]

# Three hosts: the lab must support at least three, and the fleet tests need more than one.
LAB_TEST_HOSTS = 3
# `make test` runs the tests in lanes (pytest-xdist workers gw0, gw1, ...): lane k owns the lab
# hosts 3k+1 .. 3k+3 and never touches another lane's; the lab has 3 hosts per lane.
LANE = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
LANES = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))


def labctl(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """Run the real lab CLI as `make lab-up` does."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "lab")}
    return subprocess.run(
        [sys.executable, "-m", "labctl", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


@dataclass
class Lab:
    config: LabConfig
    hosts: list[LabHost]
    up_output: str

    def host(self, name: str) -> LabHost:
        return next(h for h in self.hosts if h.name == name)


# This lane's hosts, by number.
LANE_HOSTS = range(LANE * LAB_TEST_HOSTS + 1, (LANE + 1) * LAB_TEST_HOSTS + 1)


def bring_up(size: int = LAB_TEST_HOSTS * LANES, numbers: range = LANE_HOSTS) -> Lab:
    """The lab with ``size`` hosts (default: 3 per lane; lab-up serialises the lanes: it holds
    the lab's lock), and the hosts ``numbers`` (default: this lane's), reset."""
    # What the tests start (molecule's create, labctl) must keep the lab at this size.
    os.environ["LAB_HOSTS"] = str(size)
    result = labctl("up", "--hosts", str(size))
    assert result.returncode == 0, f"lab-up failed:\n{result.stdout}\n{result.stderr}"
    config = load_config(os.environ)
    hosts = []
    for index in numbers:
        record = lab_hosts.read_record(config, config.host_name(index))
        assert record is not None, f"lab-up left no record for host {index}"
        hosts.append(LabHost(config, record.spec.name, record.spec.address))
    # A session killed mid-test (a canary installed, a lease held) must not decide this one.
    with ThreadPoolExecutor(len(hosts)) as pool:
        list(pool.map(LabHost.reset, hosts))
    return Lab(config, hosts, result.stdout + result.stderr)


@pytest.fixture(scope="session")
def lab() -> Lab:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (systemd-nspawn, mounts, veth); run `make test` as root")
    return bring_up()


@pytest.fixture
def engine_host(lab: Lab):
    """A lab host whose engine a test may reconfigure; put back as it was afterwards."""
    host = lab.hosts[1]
    original_env = host.read_file(ENV_FILE)
    yield host
    host.write_file(ENV_FILE, original_env)
    host.run("find", DROPIN_DIR, "-name", f"{TEST_DROPIN_PREFIX}*.conf", "-delete")
    host.cycle()


@pytest.fixture(scope="module")
def hosts(lab: Lab):
    """The lab's hosts for the activation tests (each test resets the ones it uses); all are
    reset when the module ends, so the next module finds them as lab-up made them."""
    yield lab.hosts
    for host in lab.hosts:
        host.reset()


# The longest lab modules, longest first (measured in CI): the lanes take whole modules in
# collection order, so these start first and the short ones fill the gaps at the end.
LONGEST_FIRST = (
    "test_canary_playbook.py",
    "test_shadow_promote_playbooks.py",
    "test_rollback_playbook.py",
    "test_monitor_slow.py",
    "test_monitor_faults.py",
    "test_monitor_command.py",
    "test_canary_playbook_slow.py",
    "test_gate_playbooks.py",
)


def _order(item: pytest.Item) -> tuple[bool, int]:
    name = item.path.name
    rank = LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
    return item.get_closest_marker("lab_lifecycle") is not None, rank


def pytest_collection_modifyitems(items):
    """Tests that take the whole lab down run last, so every other lab test finds it up; the
    longest lab modules first (the sort is stable: the rest keep their order)."""
    items.sort(key=_order)
