"""The lab as a whole: bring N hosts up (idempotently), power them off, report on them."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import engine_repo, hosts, inventory, network, rootfs
from .config import LabConfig, LabError
from .proc import log, run
from .processes import lab_processes, signal_all, wait_gone

REQUIRED_TOOLS = {
    "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap",
    "ip": "iproute2",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "git": "git",
    "useradd": "passwd",
    "systemctl": "systemd",
}


def preflight() -> None:
    """Fail early, with what to do, when this machine cannot run the lab."""
    if os.geteuid() != 0:
        raise LabError(
            "the lab needs root (systemd-nspawn, overlay mounts, a bridge and veth "
            "interfaces): run it as root, e.g. `sudo make lab-up`"
        )
    missing = sorted({pkg for tool, pkg in REQUIRED_TOOLS.items() if not shutil.which(tool)})
    if missing:
        raise LabError(f"missing Debian packages: {' '.join(missing)} (run `make setup`)")
    cgroup = Path("/sys/fs/cgroup")
    if not ((cgroup / "cgroup.controllers").exists() or (cgroup / "systemd").is_dir()):
        raise LabError(
            "no usable cgroup hierarchy at /sys/fs/cgroup (neither cgroup2 nor a name=systemd "
            "v1 hierarchy): systemd cannot boot inside the lab hosts on this machine"
        )
    if "overlay" not in Path("/proc/filesystems").read_text():
        run(["modprobe", "overlay"], check=False, quiet=True)
        if "overlay" not in Path("/proc/filesystems").read_text():
            raise LabError(
                "the kernel has no overlay filesystem: lab hosts cannot get a "
                "writable copy of the rootfs"
            )


@contextmanager
def locked(config: LabConfig) -> Iterator[None]:
    """One lab operation at a time. A flock dies with its holder, so it is never stale."""
    config.root.mkdir(parents=True, exist_ok=True)
    with config.lock_file.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log("another lab-up/lab-down is running; waiting for it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _ensure_ssh_key(config: LabConfig) -> None:
    config.ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not config.ssh_key.exists():
        run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "model-safety-lab",
                "-f",
                str(config.ssh_key),
            ]
        )


def _present_machines(config: LabConfig) -> set[str]:
    names = {p.machine for p in lab_processes()}
    if config.machines_dir.is_dir():
        names.update(entry.name for entry in config.machines_dir.iterdir() if entry.is_dir())
    return names


def _power_off(config: LabConfig, names: set[str]) -> None:
    """Shut hosts down in parallel, then remove what is left of them."""
    supervisors = [p.pid for p in lab_processes() if p.machine in names and p.kind == "nspawn"]
    signal_all(supervisors, signal.SIGTERM)
    if wait_gone(supervisors, hosts.SHUTDOWN_TIMEOUT):
        log(f"no clean shutdown within {hosts.SHUTDOWN_TIMEOUT:.0f} s; killing what is left")
    for name in sorted(names):
        hosts.destroy(config, name)


def up(config: LabConfig) -> list[tuple[hosts.HostRecord, str]]:
    """Bring hosts 1..N up; keep healthy ones as they are. Returns (record, what happened)."""
    preflight()
    started = time.monotonic()
    with locked(config):
        _ensure_ssh_key(config)
        image = rootfs.ensure_image(config)
        engine_head = engine_repo.build_engine_repo(config)
        network.ensure_bridge(config)
        specs = [
            hosts.HostSpec(
                name=config.host_name(i),
                address=str(config.host_address(i)),
                image=str(image),
                provisioner=hosts.provisioner_hash(),
                engine_head=engine_head,
                bridge=config.bridge,
            )
            for i in range(1, config.hosts + 1)
        ]
        wanted = {spec.name for spec in specs}
        extra = _present_machines(config) - wanted
        if extra:
            log(f"powering off hosts beyond LAB_HOSTS={config.hosts}: {', '.join(sorted(extra))}")
            _power_off(config, extra)
        existing = {spec.name: hosts.read_record(config, spec.name) for spec in specs}
        hosts.write_known_hosts(config, [r for r in existing.values() if r is not None])
        outcome: list[tuple[hosts.HostRecord, str]] = []
        created: list[hosts.HostRecord] = []
        for spec in specs:
            record = existing[spec.name]
            if record is not None and hosts.is_healthy(config, record, spec):
                outcome.append((record, "unchanged"))
                continue
            if record is not None or spec.name in _present_machines(config):
                log(f"{spec.name}: replacing an outdated or broken host")
            record = hosts.create(config, spec)
            created.append(record)
            outcome.append((record, "created"))
        hosts.write_known_hosts(config, [record for record, _ in outcome])
        try:
            for record in created:
                hosts.wait_ready(config, record)
        except LabError:
            inventory.write(config, [record for record, _ in outcome])
            raise
        inventory.write(config, [record for record, _ in outcome])
    log(
        f"lab up: {len(created)} created, {len(outcome) - len(created)} unchanged "
        f"in {time.monotonic() - started:.1f} s"
    )
    return outcome


def down(config: LabConfig) -> list[str]:
    """Power every lab host off cleanly and remove its traces; the rootfs cache stays."""
    preflight()
    started = time.monotonic()
    with locked(config):
        names = _present_machines(config)
        _power_off(config, names)
        inventory.remove(config)
        network.remove_bridge(config)
    log(f"lab down: {len(names)} host(s) powered off in {time.monotonic() - started:.1f} s")
    return sorted(names)


def status(config: LabConfig) -> list[dict[str, object]]:
    """What runs now: one entry per host the lab knows of, with its reachability."""
    report = []
    running = {(p.machine, p.kind) for p in lab_processes()}
    for name in sorted(_present_machines(config)):
        record = hosts.read_record(config, name)
        address = record.spec.address if record else None
        reachable = (
            bool(address)
            and hosts.ssh(
                config,
                address,
                ["systemctl", "is-active", hosts.ENGINE_UNIT],
                timeout=10,
                check=False,
            ).stdout.strip()
            == "active"
        )
        report.append(
            {
                "name": name,
                "address": address,
                "nspawn": (name, "nspawn") in running,
                "init": (name, "init") in running,
                "engine_active": reachable,
                "engine_head": record.spec.engine_head if record else None,
            }
        )
    return report
