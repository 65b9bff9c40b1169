"""Running commands: argv lists only, failures become LabError with the command's own words."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence

from .config import LabError


def log(message: str) -> None:
    print(f"lab: {message}", file=sys.stderr, flush=True)


def run(
    argv: Sequence[str], *, check: bool = True, timeout: float | None = 600, quiet: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run argv (never through a shell); raise LabError with stderr's tail when it fails."""
    try:
        result = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise LabError(f"{argv[0]} is not installed (run `make setup`)") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{' '.join(argv)} did not finish within {timeout:.0f} s") from None
    if check and result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise LabError(f"{' '.join(argv)} failed ({result.returncode}): " + " | ".join(tail))
    if not quiet and result.returncode != 0:
        log(f"{argv[0]} exited {result.returncode}: {result.stderr.strip()[:300]}")
    return result
