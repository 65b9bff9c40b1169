"""The lab's network: one bridge on the host, one veth per host (nspawn --network-bridge).

Every lab host gets a private network namespace and a static address the lab assigns, so it
looks like a production host reached over SSH. Nothing is routed beyond the bridge.
"""

from __future__ import annotations

from pathlib import Path

from .config import LabConfig
from .proc import log, run


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def ensure_bridge(config: LabConfig) -> None:
    if not link_exists(config.bridge):
        log(f"creating bridge {config.bridge} ({config.gateway}/{config.subnet.prefixlen})")
        run(["ip", "link", "add", "name", config.bridge, "type", "bridge"])
    run(
        [
            "ip",
            "address",
            "replace",
            f"{config.gateway}/{config.subnet.prefixlen}",
            "dev",
            config.bridge,
        ]
    )
    run(["ip", "link", "set", config.bridge, "up"])


def remove_bridge(config: LabConfig) -> None:
    if link_exists(config.bridge):
        run(["ip", "link", "delete", config.bridge])


def host_veth(machine: str) -> str:
    return f"vb-{machine}"


def remove_stale_veth(machine: str) -> None:
    veth = host_veth(machine)
    if link_exists(veth):
        log(f"removing stale interface {veth}")
        run(["ip", "link", "delete", veth], check=False)


def networkd_unit(address: str, prefixlen: int) -> str:
    return (
        "# Written by the lab: the static address of this host on the lab bridge.\n"
        "[Match]\nName=host0\n\n"
        f"[Network]\nAddress={address}/{prefixlen}\n"
        "LinkLocalAddressing=no\nIPv6AcceptRA=no\n"
    )
