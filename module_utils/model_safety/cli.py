"""The ``model-safety`` command line.

Each later capability adds a subcommand with ``_register``; every subcommand returns the
process exit code (DESIGN.md "Modes and exit codes").
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Callable, Sequence
from importlib import metadata

from . import __version__

Handler = Callable[[argparse.Namespace], int]


def _dependency_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for dist in ("ansible-core", "ansible-runner", "numpy", "redis"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def _cmd_version(_args: argparse.Namespace) -> int:
    print(f"model-safety {__version__}")
    for name, version in _dependency_versions().items():
        print(f"  {name} {version}")
    return 0


def _register(
    subparsers: argparse._SubParsersAction, name: str, handler: Handler, help_text: str
) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=handler)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="model-safety",
        description="Fail-closed model lifecycle checks for the AI engine.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _register(
        subparsers, "version", _cmd_version, "print the versions of this tool and its runtime"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
