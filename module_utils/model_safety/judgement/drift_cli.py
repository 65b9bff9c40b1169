"""The feature-drift part of the ``model-safety`` command line (:mod:`.drift`).

* ``--feature-reference PATH`` / ``--reference-events N`` on ``gate`` and ``feature-sanity``:
  judge the window's features against a reference file, or against the N events up to the
  ``--after`` cutover (the shadow run's window). Without either, drift is not judged.
* ``feature-reference --out PATH``: write the reference of a window (exit 0 written, 2 when
  it cannot be: too few values per feature, malformed events, no features, Redis, the path).

Standard library only at import time: numpy and redis are imported when a command runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from ..argtypes import positive_int

EXIT_WRITTEN, EXIT_ERROR = 0, 2


def add_drift_options(parser: argparse.ArgumentParser) -> None:
    """``--feature-reference`` and ``--reference-events`` (mutually exclusive)."""
    group = parser.add_argument_group(
        "feature drift (PSI per feature; warn > 0.1, block > 0.25; not judged without these)"
    )
    choice = group.add_mutually_exclusive_group()
    choice.add_argument(
        "--feature-reference",
        metavar="PATH",
        help="a reference file written by 'model-safety feature-reference'; unreadable, "
        "corrupt or of another version blocks",
    )
    choice.add_argument(
        "--reference-events",
        metavar="N",
        type=positive_int,
        help="the reference is the N events up to the --after cutover (the shadow run's "
        "window; needs --after)",
    )


def drift_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The drift keyword arguments of run_gate / run_feature_sanity from the options."""
    return {
        "feature_reference": args.feature_reference,
        "reference_events": args.reference_events,
    }


def register(
    subparsers: argparse._SubParsersAction,
    register_command: Callable[..., argparse.ArgumentParser],
    add_window_options: Callable[..., None],
    window_kwargs: Callable[[argparse.Namespace], dict[str, Any]],
) -> None:
    """Add ``feature-reference`` with the CLI's own window options."""

    def handler(args: argparse.Namespace) -> int:
        from .reports import dumps
        from .run import run_feature_reference

        result = run_feature_reference(
            args.redis_url, args.stream, out=args.out, **window_kwargs(args)
        )
        code = EXIT_WRITTEN if result.get("exit_code") == 0 else EXIT_ERROR
        if args.json:
            print(dumps(result))
        elif code == EXIT_WRITTEN:
            features = ", ".join(
                f"{name} ({entry['n']} values, {entry['bins']} bins)"
                for name, entry in result["features"].items()
            )
            print(
                f"FEATURE REFERENCE written to {result['path']}: {result['event_count']} events "
                f"{result['first_ts']} .. {result['last_ts']} of {result['stream']}; {features}"
            )
        else:
            print(f"FEATURE REFERENCE not written: {result.get('error')}")
        return code

    parser = register_command(
        subparsers,
        "feature-reference",
        handler,
        "write the feature reference of a window (quantile bins and shares per feature) for "
        "drift checks (exit 0 written, 2 not)",
    )
    parser.add_argument(
        "--out",
        metavar="PATH",
        required=True,
        help="the reference file to write (atomically, mode 0640)",
    )
    add_window_options(parser, reports=False)
