"""labctl: the local lab of systemd hosts (`make lab-up`, `make lab-down`, `make lab-status`).

Settings come from the environment (LAB_HOSTS, LAB_ROOT, LAB_CACHE, LAB_SUBNET, LAB_BRIDGE,
LAB_MIRROR, LAB_INVENTORY, LAB_BOOT_TIMEOUT); see README.md "The lab".
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import hosts, lab, remote
from .config import LabError, load_config


def _cmd_up(args: argparse.Namespace) -> int:
    config = load_config({**os.environ, **({"LAB_HOSTS": str(args.hosts)} if args.hosts else {})})
    for record, what in lab.up(config):
        print(
            f"{record.spec.name:<8} {record.spec.address:<15} {what:<9} "
            f"engine {record.spec.engine_head[:7]}"
        )
    print(f"inventory: {config.inventory_file}")
    return 0


def _cmd_down(_args: argparse.Namespace) -> int:
    names = lab.down(load_config())
    print(f"powered off: {', '.join(names) if names else 'nothing was running'}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    report = lab.status(load_config())
    if args.json:
        print(json.dumps(report, indent=2))
    elif not report:
        print("the lab is down")
    for host in [] if args.json else report:
        print(
            f"{host['name']:<8} {host['address'] or '-':<15} "
            f"nspawn={'up' if host['nspawn'] else 'DOWN'} "
            f"engine={'active' if host['engine_active'] else 'NOT ACTIVE'}"
        )
    return 0 if report and all(h["engine_active"] for h in report) else 1


def _cmd_ssh(args: argparse.Namespace) -> int:
    config = load_config()
    record = hosts.read_record(config, args.host)
    if record is None:
        raise LabError(f"no lab host named {args.host!r} (is the lab up?)")
    argv = hosts.ssh_argv(config, record.spec.address, args.command)
    if not args.command:
        argv = [*argv[:-2], "-t"]  # an interactive login shell
    os.execvp(argv[0], argv)
    return 1  # pragma: no cover - execvp does not return


def _cmd_reset(args: argparse.Namespace) -> int:
    config = load_config()
    names = args.host or [host["name"] for host in lab.status(config) if host["nspawn"]]
    if not names:
        raise LabError("no lab host runs (make lab-up)")
    for name in names:
        record = hosts.read_record(config, name)
        if record is None:
            raise LabError(f"no lab host named {name!r} (is the lab up?)")
        started = remote.LabHost(config, name, record.spec.address).reset()
        print(f"{name:<8} reset, engine started as invocation {started.invocation}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labctl", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="build (once) and boot the lab hosts; idempotent")
    up.add_argument("--hosts", type=int, help="number of hosts (default: LAB_HOSTS or 1)")
    up.set_defaults(handler=_cmd_up)
    commands.add_parser("down", help="power every lab host off").set_defaults(handler=_cmd_down)
    status = commands.add_parser("status", help="what runs now (exit 1 unless all is well)")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_cmd_status)
    ssh = commands.add_parser("ssh", help="a shell or one command on a lab host")
    ssh.add_argument("host")
    ssh.add_argument("command", nargs=argparse.REMAINDER)
    ssh.set_defaults(handler=_cmd_ssh)
    reset = commands.add_parser(
        "reset", help="put hosts' engines back as lab-up made them (env, drop-ins, activations)"
    )
    reset.add_argument("host", nargs="*", help="default: every running lab host")
    reset.set_defaults(handler=_cmd_reset)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except LabError as exc:
        print(f"lab: ERROR: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
