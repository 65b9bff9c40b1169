"""Feature drift (model_safety.judgement.drift) against a plain per-value Python baseline on
the same synthetic windows, in memory (no Redis, no lab). Prints figures; not a test.

A reference window and a current window of N events each, with F features (normal, the
current one shifted by 0.3 std): the reference's quantile edges and shares, then the current
window's bin counts and PSI per feature. Both paths must agree (the loop uses bisect for the
bins and math.log for the PSI), then their times are printed.

    python bench/psi_bench.py [--events 100000] [--features 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import bisect
import math
import platform
import time
from types import SimpleNamespace

import numpy as np

from model_safety.judgement.drift import (
    PSI_BINS,
    PSI_EPSILON,
    build_reference,
    feature_drift,
)


def synthetic_window(n: int, features: int, shift: float, seed: int) -> SimpleNamespace:
    """The parts of an EventWindow the drift code reads."""
    rng = np.random.default_rng(seed)
    values = {f"f{i}": rng.normal(shift, 1.0, n) for i in range(features)}
    return SimpleNamespace(
        n=n,
        features=values,
        feature_present={name: np.ones(n, dtype=np.bool_) for name in values},
        malformed=[],
        timestamp_ms=1_768_046_400_000 + np.arange(n, dtype=np.int64) * 10,
        first_id="1-0",
        last_id=f"{n}-0",
    )


def plain_psi(reference: list[float], current: list[float]) -> float:
    """The same PSI, one value at a time: sorted reference quantiles (inverted CDF), bisect."""
    ordered = sorted(reference)
    n = len(ordered)
    edges: list[float] = []
    for k in range(1, PSI_BINS):
        edge = ordered[max(0, math.ceil(n * k / PSI_BINS) - 1)]
        if not edges or edge != edges[-1]:
            edges.append(edge)
    expected = [0] * (len(edges) + 1)
    actual = [0] * (len(edges) + 1)
    for value in reference:
        expected[bisect.bisect_left(edges, value)] += 1
    for value in current:
        actual[bisect.bisect_left(edges, value)] += 1
    total = 0.0
    for e_count, a_count in zip(expected, actual, strict=True):
        e = max(e_count / len(reference), PSI_EPSILON)
        a = max(a_count / len(current), PSI_EPSILON)
        total += (a - e) * math.log(a / e)
    return total


def best_of(repeat: int, run) -> tuple[float, object]:
    best, result = math.inf, None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    reference_window = synthetic_window(args.events, args.features, 0.0, seed=1)
    current_window = synthetic_window(args.events, args.features, 0.3, seed=2)

    def vectorised() -> dict[str, float]:
        reference = build_reference(reference_window, stream="bench", source="bench")
        drift = feature_drift(reference, current_window)
        return {name: row["psi"] for name, row in drift["features"].items()}

    def plain() -> dict[str, float]:
        return {
            name: plain_psi(
                reference_window.features[name].tolist(), current_window.features[name].tolist()
            )
            for name in reference_window.features
        }

    fast_s, fast = best_of(args.repeat, vectorised)
    slow_s, slow = best_of(args.repeat, plain)
    for name, value in fast.items():
        assert math.isclose(value, round(slow[name], 6), abs_tol=2e-6), (name, value, slow[name])
    print(f"psi_bench: python {platform.python_version()}, numpy {np.__version__}")
    print(
        f"  {args.events} reference + {args.events} current events, {args.features} features, "
        f"best of {args.repeat}; PSI per feature {', '.join(f'{v:.4f}' for v in fast.values())}"
    )
    print(f"  numpy (build_reference + feature_drift): {fast_s * 1000:8.1f} ms")
    print(f"  plain Python loop (sort, bisect):        {slow_s * 1000:8.1f} ms")
    print(f"  speed-up: {slow_s / fast_s:.1f}x")


if __name__ == "__main__":
    main()
