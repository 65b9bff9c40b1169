"""Entry point: ``python3 -m ai_engine [--benchmark N]``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .config import EX_CONFIG, ConfigError, load_config
from .engine import benchmark


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the service, or with ``--benchmark N`` measure the event generation rate."""
    parser = argparse.ArgumentParser(prog="python3 -m ai_engine", description=__doc__)
    parser.add_argument(
        "--benchmark",
        metavar="N",
        type=_positive_int,
        help="generate N events (models, ensemble, JSON; no Redis/SQLite) and print events/s",
    )
    args = parser.parse_args(argv)
    if args.benchmark is None:
        # Imported here so that --benchmark works without the redis package.
        from .service import Logger, run_service

        return run_service(os.environ, Logger())
    try:
        config = load_config(os.environ)
    except ConfigError as exc:
        print(f"[ERROR] config: {exc}", file=sys.stderr, flush=True)
        return EX_CONFIG
    rate = benchmark(config, args.benchmark)
    print(f"benchmark: {args.benchmark} events, {rate:.1f} events/s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
