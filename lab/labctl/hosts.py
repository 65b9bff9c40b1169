"""One lab host: an overlay on the cached image, provisioned like production, booted by nspawn.

A host's directory (LAB_ROOT/machines/<name>) holds the overlay's upper and work dirs, the
mounted root and host.json (what it was built from and its nspawn pid). Its console log is
kept in LAB_ROOT/logs/<name>.console.log, beyond the host's removal, to show how it ended.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from . import engine_repo
from .config import LabConfig, LabError
from .mounts import is_mounted, unmount_all_under
from .network import networkd_unit, remove_stale_veth
from .proc import log, run
from .processes import MARKER, alive, lab_processes, signal_all, wait_gone
from .rootfs import SERVICE_USER

ENGINE_UNIT = "quantum-ai-engine.service"
ENGINE_CHECKOUT = "home/qt/quantum_trader"
ENGINE_ENV = "etc/quantum/ai-engine.env"
PATCHTST_MODEL = "opt/quantum/models/patchtst.pth"
SHUTDOWN_TIMEOUT = 30.0


@dataclass(frozen=True)
class HostSpec:
    """What a host is built from; a running host whose spec differs is rebuilt."""

    name: str
    address: str
    image: str
    engine_head: str
    bridge: str
    provisioner: str


def provisioner_hash() -> str:
    """Hash of the code that provisions a host: changing it rebuilds running hosts too."""
    digest = hashlib.sha256()
    for module in ("hosts.py", "network.py"):
        digest.update((Path(__file__).parent / module).read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class HostRecord:
    spec: HostSpec
    nspawn_pid: int
    host_key: str


def machine_dir(config: LabConfig, name: str) -> Path:
    return config.machines_dir / name


def console_log(config: LabConfig, name: str) -> Path:
    return config.root / "logs" / f"{name}.console.log"


def read_record(config: LabConfig, name: str) -> HostRecord | None:
    try:
        raw = json.loads((machine_dir(config, name) / "host.json").read_text())
        return HostRecord(HostSpec(**raw["spec"]), int(raw["nspawn_pid"]), raw["host_key"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def ssh_argv(config: LabConfig, address: str, command: list[str]) -> list[str]:
    """ssh argv for one remote command; the command is quoted for the remote shell."""
    return [
        "ssh",
        "-i",
        str(config.ssh_key),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=3",
        "-o",
        f"UserKnownHostsFile={config.known_hosts}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "LogLevel=ERROR",
        f"root@{address}",
        "--",
        shlex.join(command),
    ]


def ssh(
    config: LabConfig, address: str, command: list[str], timeout: float = 30, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return run(ssh_argv(config, address, command), timeout=timeout, check=check, quiet=True)


def _owner_ids(root: Path, user: str) -> tuple[int, int]:
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3])
    raise LabError(f"user {user} is missing from the lab image (rebuild: remove {root})")


def _write(path: Path, content: str | bytes, mode: int, owner: tuple[int, int] = (0, 0)) -> None:
    """Replace ``path`` atomically: every lane's SSH reads the lab's known_hosts while another
    lane's lab-up rewrites it, and a truncated file in between fails host key checking."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode()
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chown(temp, *owner)
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def _make_dir(path: Path, mode: int, owner: tuple[int, int] = (0, 0)) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, *owner)
    path.chmod(mode)


def _chown_tree(top: Path, owner: tuple[int, int]) -> None:
    os.chown(top, *owner)
    for directory, dirnames, filenames in os.walk(top):
        for entry in dirnames + filenames:
            os.lchown(Path(directory, entry), *owner)


def _provision_identity(config: LabConfig, spec: HostSpec, root: Path, mdir: Path) -> str:
    """Hostname, address, the lab's authorized key and a new host key; return the host key."""
    _write(root / "etc/hostname", f"{spec.name}\n", 0o644)
    _write(root / "etc/hosts", f"127.0.0.1 localhost\n127.0.1.1 {spec.name}\n", 0o644)
    _write(
        root / "etc/systemd/network/10-lab.network",
        networkd_unit(spec.address, config.subnet.prefixlen),
        0o644,
    )
    _make_dir(root / "root/.ssh", 0o700)
    _write(
        root / "root/.ssh/authorized_keys", config.ssh_key.with_suffix(".pub").read_text(), 0o600
    )
    host_key = mdir / "ssh_host_ed25519_key"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", spec.name, "-f", str(host_key)])
    shutil.copy2(host_key, root / "etc/ssh/ssh_host_ed25519_key")
    shutil.copy2(host_key.with_suffix(".pub"), root / "etc/ssh/ssh_host_ed25519_key.pub")
    return host_key.with_suffix(".pub").read_text().split()[1]


def _deploy_engine(config: LabConfig, root: Path) -> None:
    """The engine as production has it: checkout, unit, env file, data and backup dirs."""
    qt = _owner_ids(root, SERVICE_USER)
    checkout = root / ENGINE_CHECKOUT
    engine_repo.clone_into(config, checkout)
    _chown_tree(checkout, qt)
    engine_src = config.engine_src
    _write(root / ENGINE_ENV, (engine_src / "ai-engine.env").read_text(), 0o640, (0, qt[1]))
    _write(root / "etc/systemd/system" / ENGINE_UNIT, (engine_src / ENGINE_UNIT).read_text(), 0o644)
    _make_dir(root / f"etc/systemd/system/{ENGINE_UNIT}.d", 0o755)
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / ENGINE_UNIT).symlink_to(f"/etc/systemd/system/{ENGINE_UNIT}")
    _make_dir(root / "opt/quantum", 0o755)
    _make_dir(root / "opt/quantum/data", 0o750, qt)
    _make_dir(root / "opt/quantum/models", 0o750, qt)
    _write(root / PATCHTST_MODEL, b"PATCHTST-LAB-WEIGHTS v1\n" * 64, 0o640, qt)
    _make_dir(root / "opt/quantum/backups", 0o755)
    _make_dir(root / "opt/quantum/backups/model_activations", 0o700)
    _make_dir(root / "var/log/quantum", 0o750)


def _start_nspawn(config: LabConfig, spec: HostSpec, root: Path, mdir: Path) -> int:
    console_log(config, spec.name).parent.mkdir(parents=True, exist_ok=True)
    console = console_log(config, spec.name).open("wb")
    argv = [
        "systemd-nspawn",
        "--quiet",
        "--boot",
        f"--directory={root}",
        f"--machine={spec.name}",
        # No systemd on the lab's own machine: nothing to register with, no scope to create.
        "--register=no",
        "--keep-unit",
        f"--network-bridge={config.bridge}",
        "--link-journal=no",
        "--console=read-only",
        # SIGTERM to nspawn then powers the host off (SIGRTMIN+4), as `systemctl poweroff`.
        "--kill-signal=SIGRTMIN+4",
        f"--setenv={MARKER}={spec.name}",
        # The host's machine-id comes from this UUID (the image's /etc/machine-id is empty).
        f"--uuid={uuid.uuid4()}",
    ]
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=console,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd="/",
    )
    console.close()
    return process.pid


def create(config: LabConfig, spec: HostSpec) -> HostRecord:
    """Build and boot one host (the caller waits for it with wait_ready)."""
    destroy(config, spec.name)
    mdir = machine_dir(config, spec.name)
    upper, work, root = mdir / "upper", mdir / "work", mdir / "root"
    for directory in (upper, work, root):
        directory.mkdir(parents=True)
    run(
        [
            "mount",
            "-t",
            "overlay",
            "overlay",
            "-o",
            f"lowerdir={spec.image},upperdir={upper},workdir={work}",
            str(root),
        ]
    )
    host_key = _provision_identity(config, spec, root, mdir)
    _deploy_engine(config, root)
    pid = _start_nspawn(config, spec, root, mdir)
    record = HostRecord(spec, pid, host_key)
    (mdir / "host.json").write_text(
        json.dumps({"spec": asdict(spec), "nspawn_pid": pid, "host_key": host_key}, indent=2)
    )
    return record


def _console_tail(config: LabConfig, name: str, lines: int = 15) -> str:
    try:
        text = console_log(config, name).read_text(errors="replace")
    except OSError:
        return "(no console log)"
    return "\n".join(text.splitlines()[-lines:])


def wait_ready(config: LabConfig, record: HostRecord) -> None:
    """Wait until the host boots fully and its engine is active; fail with the reason."""
    spec = record.spec
    deadline = time.monotonic() + config.boot_timeout
    while not _port_open(spec.address, 22):
        if not alive(record.nspawn_pid):
            raise LabError(
                f"{spec.name}: nspawn exited during boot:\n" + _console_tail(config, spec.name)
            )
        if time.monotonic() > deadline:
            raise LabError(
                f"{spec.name}: no SSH on {spec.address} after "
                f"{config.boot_timeout:.0f} s:\n" + _console_tail(config, spec.name)
            )
        time.sleep(0.25)
    remaining = max(5.0, deadline - time.monotonic())
    state = _system_state(config, spec.address, remaining)
    if state == "degraded":
        # Seen once under heavy load: a boot-time setup unit failing in one of several hosts
        # booting at once. Start the failed units once more (they are idempotent oneshots)
        # and say so; a host that stays degraded is refused below with the units' journal.
        failed = _failed_units(config, spec.address)
        log(
            f"{spec.name}: boot degraded ({', '.join(failed)}); starting them once more:\n"
            + _unit_journal(config, spec.address, failed)
        )
        ssh(config, spec.address, ["systemctl", "restart", *failed], check=False)
        state = _system_state(config, spec.address, 30)
    if state != "running":
        failed = _failed_units(config, spec.address)
        raise LabError(
            f"{spec.name}: boot finished as {state or 'unknown'!r}; failed units: "
            f"{', '.join(failed) or 'none listed'}\n" + _unit_journal(config, spec.address, failed)
        )
    engine = ssh(
        config, spec.address, ["systemctl", "is-active", ENGINE_UNIT], check=False
    ).stdout.strip()
    if engine != "active":
        journal = ssh(
            config,
            spec.address,
            ["journalctl", "--no-pager", "-n", "20", "-u", ENGINE_UNIT],
            check=False,
        ).stdout
        raise LabError(f"{spec.name}: {ENGINE_UNIT} is {engine!r}:\n{journal}")


def _system_state(config: LabConfig, address: str, timeout: float) -> str:
    argv = ["systemctl", "is-system-running", "--wait"]
    return ssh(config, address, argv, timeout=timeout, check=False).stdout.strip()


def _failed_units(config: LabConfig, address: str) -> list[str]:
    argv = ["systemctl", "list-units", "--failed", "--plain", "--no-legend", "--quiet"]
    lines = ssh(config, address, argv, check=False).stdout.splitlines()
    return [line.split()[0] for line in lines if line.strip()]


def _unit_journal(config: LabConfig, address: str, units: list[str]) -> str:
    if not units:
        return ""
    argv = ["journalctl", "--no-pager", "-b", "-n", "30"]
    for unit in units:
        argv += ["-u", unit]
    return ssh(config, address, argv, check=False).stdout


def _port_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


def is_healthy(config: LabConfig, record: HostRecord | None, spec: HostSpec) -> bool:
    """A host is kept as it is when it was built from spec, runs, and answers over SSH."""
    if record is None or record.spec != spec or not alive(record.nspawn_pid):
        return False
    if not is_mounted(machine_dir(config, spec.name) / "root"):
        return False
    return ssh(config, spec.address, ["true"], timeout=10, check=False).returncode == 0


def destroy(config: LabConfig, name: str) -> None:
    """Remove every trace of a host: processes, mounts, veth, directory. Safe to repeat."""
    leftovers = [p.pid for p in lab_processes() if p.machine == name]
    if leftovers:
        signal_all(leftovers, signal.SIGKILL)
        if wait_gone(leftovers, 10):
            raise LabError(f"{name}: processes {leftovers} survive SIGKILL")
    mdir = machine_dir(config, name)
    unmount_all_under(mdir)
    remove_stale_veth(name)
    if mdir.exists():
        shutil.rmtree(mdir)


def write_known_hosts(config: LabConfig, records: list[HostRecord]) -> None:
    lines = [f"{r.spec.address} ssh-ed25519 {r.host_key}\n" for r in records]
    _write(config.known_hosts, "".join(lines), 0o600)
