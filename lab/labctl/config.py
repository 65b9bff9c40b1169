"""Where the lab lives and how it is shaped: one frozen settings object, read from the env.

The lab's state is kept outside any checkout (LAB_ROOT, LAB_CACHE) on purpose: CI runs in a
fresh clone right after a session ends, and must find (and clean up, or reuse) the hosts and
the rootfs cache that an earlier checkout left behind on the same machine.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_HOSTS = 20
# The name checks are applied with fullmatch: a "$" anchor would let a trailing newline through.
# nspawn names the host side of the veth "vb-<machine>", and interface names have 15 chars.
_NAME_RE = re.compile(r"[a-z][a-z0-9]{0,9}")
_BRIDGE_RE = re.compile(r"[a-z][a-z0-9]{1,14}")
_MIRROR_RE = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~/-]*)?")


class LabError(Exception):
    """A lab operation cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class LabConfig:
    hosts: int
    root: Path
    cache: Path
    subnet: ipaddress.IPv4Network
    bridge: str
    name_prefix: str
    mirror: str
    suite: str
    inventory_file: Path
    engine_src: Path
    boot_timeout: float

    @property
    def machines_dir(self) -> Path:
        return self.root / "machines"

    @property
    def ssh_dir(self) -> Path:
        return self.root / "ssh"

    @property
    def ssh_key(self) -> Path:
        return self.ssh_dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.ssh_dir / "known_hosts"

    @property
    def engine_repo(self) -> Path:
        return self.root / "engine.git"

    @property
    def state_file(self) -> Path:
        return self.root / "lab.json"

    @property
    def lock_file(self) -> Path:
        return self.root / "lab.lock"

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        return self.subnet.network_address + 1

    def host_name(self, index: int) -> str:
        return f"{self.name_prefix}{index}"

    def host_address(self, index: int) -> ipaddress.IPv4Address:
        address = self.subnet.network_address + 10 + index
        if address not in self.subnet or address == self.subnet.broadcast_address:
            raise LabError(f"subnet {self.subnet} has no room for host {index}")
        return address


def _int_env(env: dict[str, str], key: str, default: int, low: int, high: int) -> int:
    raw = env.get(key, "").strip() or str(default)
    try:
        value = int(raw)
    except ValueError:
        raise LabError(f"{key}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise LabError(f"{key}={value} is out of range [{low}, {high}]")
    return value


def load_config(env: dict[str, str] | None = None) -> LabConfig:
    """Read LAB_* settings; every value is validated because most end up in argv or paths."""
    env = dict(os.environ if env is None else env)
    hosts = _int_env(env, "LAB_HOSTS", 1, 1, MAX_HOSTS)
    prefix = env.get("LAB_NAME_PREFIX", "qlab")
    if not _NAME_RE.fullmatch(f"{prefix}{MAX_HOSTS}"):
        raise LabError(f"LAB_NAME_PREFIX={prefix!r} must be 1-8 lowercase letters/digits")
    bridge = env.get("LAB_BRIDGE", "qsclab0")
    if not _BRIDGE_RE.fullmatch(bridge):
        raise LabError(f"LAB_BRIDGE={bridge!r} is not a valid interface name")
    try:
        subnet = ipaddress.IPv4Network(env.get("LAB_SUBNET", "10.231.57.0/24"))
    except ValueError as exc:
        raise LabError(f"LAB_SUBNET: {exc}") from None
    if subnet.num_addresses < 64:
        raise LabError(f"LAB_SUBNET={subnet} is too small (at least a /26)")
    mirror = env.get("LAB_MIRROR", "http://deb.debian.org/debian")
    if not _MIRROR_RE.fullmatch(mirror):
        raise LabError(f"LAB_MIRROR={mirror!r} is not an http(s) URL")
    paths = {}
    for key, default in (
        ("LAB_ROOT", "/var/lib/model-safety-lab"),
        ("LAB_CACHE", "/var/cache/model-safety-lab"),
        ("LAB_INVENTORY", str(REPO_ROOT / "inventory" / "lab" / "hosts.yml")),
    ):
        path = Path(env.get(key, default))
        if not path.is_absolute():
            raise LabError(f"{key}={path} must be an absolute path")
        paths[key] = path
    boot_timeout = float(_int_env(env, "LAB_BOOT_TIMEOUT", 120, 10, 900))
    return LabConfig(
        hosts=hosts,
        root=paths["LAB_ROOT"],
        cache=paths["LAB_CACHE"],
        subnet=subnet,
        bridge=bridge,
        name_prefix=prefix,
        mirror=mirror,
        suite="bookworm",
        inventory_file=paths["LAB_INVENTORY"],
        engine_src=REPO_ROOT / "lab" / "engine",
        boot_timeout=boot_timeout,
    )
