"""``model-safety build-patchtst-dataset``: the command line of :mod:`.dataset`.

``register(subparsers)`` adds the subcommand to the ``model-safety`` parser. The handler
returns 0 on success (also ``--dry-run``) and 2, with one ``model-safety: ...`` line on
stderr, for any bad input or failure (fail-closed: nothing is left half-written).
Progress goes to stderr once a build has run a second (quick builds print none).

The defaults of the build are here (the issue's command-line defaults); :mod:`.dataset`, and
with it numpy, is imported only when the subcommand runs, so registering it keeps
``model-safety version`` quick and free of numpy.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

from ..argtypes import positive_int, share
from ..judgement.reports import DEFAULT_REPORT_DIR, dumps
from ..site_defaults import DEFAULT_TRADE_LOG

DEFAULT_LOOKBACK = 64
DEFAULT_HORIZON = "4h"
DEFAULT_THRESHOLD = 0.0
DEFAULT_VALIDATION_FRACTION = 0.2
DEFAULT_OUT_DIR = "data"
EXIT_OK, EXIT_FAIL = 0, 2
_PROGRESS_EVERY_S = 1.0

_HELP = "PatchTST training windows (X, y) from the OHLCV candles of a SQLite database"


class _ProgressPrinter:
    """Prints the build's progress to ``stream`` once it has run a second: at most once a
    second within a stage, and at every new stage."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.began = self.last = time.monotonic()
        self.stage = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        new_stage, self.stage = stage != self.stage, stage
        if now - self.began < _PROGRESS_EVERY_S or (
            now - self.last < _PROGRESS_EVERY_S and not new_stage
        ):
            return
        self.last = now
        if stage == "write":
            line = f"writing the dataset ({total / 1e9:.2f} GB of X)"
        elif total:
            line = f"{stage} {done}/{total} ({100 * done / total:.0f}%)"
        else:
            line = f"{stage} {done}"
        elapsed = now - self.began
        print(f"build-patchtst-dataset: {line}, {elapsed:.0f} s", file=self.stream, flush=True)


def _cmd_build(args: argparse.Namespace) -> int:
    from .build import build_dataset
    from .options import BuildOptions, DatasetError
    from .report import summary_lines

    try:
        options = BuildOptions.parse(
            db=args.db,
            symbols=args.symbols,
            start=args.start,
            end=args.end,
            lookback=args.lookback,
            horizon=args.horizon,
            threshold=args.threshold,
            validation_fraction=args.validation_fraction,
        )
        result = build_dataset(
            options,
            args.out_dir,
            args.report_dir,
            dry_run=args.dry_run,
            progress=_ProgressPrinter(sys.stderr),
        )
    except DatasetError as exc:
        return _failed(args, str(exc))
    except OSError as exc:
        return _failed(args, f"cannot write the dataset or its report: {exc}")
    if args.json:
        built = {
            "dry_run": args.dry_run,
            "dataset": result.dataset_path,
            "report": result.report_path,
            "metadata": result.metadata,
            "exit_code": EXIT_OK,
        }
        print(dumps(built))
    else:
        print("\n".join(summary_lines(result.metadata, result.dataset_path, result.report_path)))
    return EXIT_OK


def _failed(args: argparse.Namespace, reason: str) -> int:
    """The one stderr line of a failed build, and with --json its result (exit 2)."""
    print(f"model-safety: {reason}", file=sys.stderr)
    if args.json:
        print(dumps({"error": reason, "exit_code": EXIT_FAIL}))
    return EXIT_FAIL


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``build-patchtst-dataset`` with its options to the ``model-safety`` parser."""
    parser = subparsers.add_parser("build-patchtst-dataset", help=_HELP, description=_HELP)
    parser.set_defaults(handler=_cmd_build)
    source = parser.add_argument_group("input (table ohlcv: symbol, ts, open, high, low, ...)")
    source.add_argument(
        "--db", metavar="PATH", default=DEFAULT_TRADE_LOG, help=f"default {DEFAULT_TRADE_LOG}"
    )
    source.add_argument(
        "--symbols", metavar="A,B", help="comma-separated symbols (default: every symbol)"
    )
    source.add_argument(
        "--start",
        metavar="TIME",
        help="only candles opening at or after TIME: unix seconds, a date (2026-01-10, UTC) "
        "or an ISO-8601 time with Z or an offset",
    )
    source.add_argument("--end", metavar="TIME", help="only candles opening before TIME")
    windows = parser.add_argument_group("windows and labels")
    windows.add_argument(
        "--lookback",
        metavar="T",
        type=positive_int,
        default=DEFAULT_LOOKBACK,
        help=f"candles per window (default {DEFAULT_LOOKBACK})",
    )
    windows.add_argument(
        "--horizon",
        metavar="DURATION",
        default=DEFAULT_HORIZON,
        help=f"label horizon, a whole number of candles: 4h, 90m, 1d (default {DEFAULT_HORIZON})",
    )
    windows.add_argument(
        "--threshold",
        metavar="R",
        type=float,
        default=DEFAULT_THRESHOLD,
        help=f"WIN when close[t+h] / close[t] - 1 > R, else LOSS (default {DEFAULT_THRESHOLD:g})",
    )
    windows.add_argument(
        "--validation-fraction",
        metavar="F",
        type=share,
        default=DEFAULT_VALIDATION_FRACTION,
        help="share of the newest windows for validation in the chronological split "
        f"(default {DEFAULT_VALIDATION_FRACTION:g})",
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "--out-dir",
        metavar="DIR",
        default=DEFAULT_OUT_DIR,
        help=f"where patchtst_sequences_<stamp>.npz goes (default {DEFAULT_OUT_DIR})",
    )
    output.add_argument(
        "--report-dir",
        metavar="DIR",
        default=DEFAULT_REPORT_DIR,
        help=f"where the Markdown report goes (default {DEFAULT_REPORT_DIR})",
    )
    output.add_argument(
        "--dry-run", action="store_true", help="check and count, print the counts, write nothing"
    )
    output.add_argument(
        "--json",
        action="store_true",
        help="print the result (the paths and the dataset's metadata) as one JSON object",
    )
