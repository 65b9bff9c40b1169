"""Feature drift: the population stability index (PSI) of each feature, reference vs current.

The question is whether the features the models see now come from the distribution they came
from before (seed 002: "PSI=1.000, features completely OOD"). Per feature:

* **Bins** are fixed by the *reference*: its quantiles at 1/10, 2/10, ... 9/10 (numpy's
  ``inverted_cdf`` method, so every edge is a value the reference really had), deduplicated.
  A value lands in bin ``i`` when ``edges[i-1] < value <= edges[i]``, the outer bins are open
  (``-inf``, ``+inf``). A discrete feature has fewer bins (its repeated quantiles collapse), a
  constant one two: ``<= c`` and ``> c``.
* **PSI** = sum over bins of ``(a - e) * ln(a / e)``, ``e`` the reference's share of the bin,
  ``a`` the current window's. An empty bin would make ``ln`` infinite, so both shares are
  floored at :data:`PSI_EPSILON` (1e-4) first: a bin the current window left empty adds about
  ``e * 9.2`` (0.92 for a 10 % bin), a bin the reference never saw ``a * 9.2``. Windows of the
  same distribution give PSI near 0 (about ``(bins - 1) * (1/n_ref + 1/n_cur)`` from sampling
  alone: 0.05 at 1000 vs 200 events), disjoint ones about 18.
* Only finite values count (NaN and Inf are feature sanity's problems, reported there).

Thresholds (:class:`.thresholds.Thresholds`): a feature warns at PSI > ``psi_warn`` (0.1),
blocks at PSI > ``psi_block`` (0.25); with fewer than ``psi_min_events`` (200) finite values in
either window it is *not decided* (never a rollback; in the gate, which decides once, a
drift check that was asked for and cannot decide blocks, like its other too-few-events rule).
A feature of the reference that none of the current window's events carry (the window being
long enough) blocks; a feature that is only in the current window is a warning.

The reference is a **reference file** (:func:`build_reference`, :func:`write_reference`,
:func:`load_reference`; written by ``model-safety feature-reference``) or a **window of events**
(the events before the gate's cutover: the shadow run's window), binned the same way. Counts
add up, so the monitor keeps per-feature bin counts of the canary's events since activation
(:func:`window_counts`) and judges them with :func:`drift_from_counts`, as the gate does with
:func:`feature_drift`. Standard library and numpy only (runs on the target).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..fileio import write_atomic
from ..telemetry.contract import MAX_FEATURES
from ..telemetry.events import EventWindow
from ..utctime import iso_ms
from .thresholds import Thresholds

__all__ = [
    "PSI_BINS",
    "PSI_EPSILON",
    "REFERENCE_FORMAT",
    "REFERENCE_VERSION",
    "FeatureReferenceError",
    "bin_counts",
    "build_reference",
    "describe_reference",
    "drift_from_counts",
    "failed",
    "feature_drift",
    "load_reference",
    "not_judged",
    "psi",
    "quantile_edges",
    "validate_reference",
    "window_counts",
    "write_reference",
]

PSI_BINS = 10
"""Quantile bins per feature (fewer when the reference's quantiles repeat)."""
PSI_EPSILON = 1e-4
"""Floor of a bin's share before the logarithm (an empty bin would make it infinite)."""
REFERENCE_FORMAT = "model-safety-feature-reference"
REFERENCE_VERSION = 1
REFERENCE_MODE = 0o640
MAX_REFERENCE_BYTES = 4 * 1024 * 1024
"""A reference file is a few KB; anything larger is not one (and is not read into memory)."""
_FEATURE_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_DEFAULT = Thresholds()


class FeatureReferenceError(ValueError):
    """A reference that cannot be used: unreadable, not JSON, wrong format or version, bad
    values, too few events. The message names the file and what is wrong."""


# --------------------------------------------------------------------------- the measure


def quantile_edges(values: np.ndarray, bins: int = PSI_BINS) -> np.ndarray:
    """The inner bin edges of ``values`` (finite, at least one): its quantiles at k/bins,
    k = 1..bins-1, each a value of ``values``, sorted and deduplicated."""
    quantiles = np.arange(1, bins) / bins
    return np.unique(np.quantile(values, quantiles, method="inverted_cdf"))


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """How many of ``values`` fall in each of the ``len(edges) + 1`` bins (right-closed)."""
    index = np.searchsorted(edges, values, side="left")
    return np.bincount(index, minlength=len(edges) + 1)


def psi(expected: np.ndarray, actual: np.ndarray, epsilon: float = PSI_EPSILON) -> float:
    """PSI of two histograms over the same bins (counts or shares, each normalised here):
    ``sum((a - e) * ln(a / e))`` with both shares floored at ``epsilon``."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    e = np.maximum(e / e.sum(), epsilon)
    a = np.maximum(a / a.sum(), epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


def _finite(window: EventWindow, name: str) -> tuple[np.ndarray, int]:
    """(finite values of feature ``name`` in the events that carry it, how many were not)."""
    values = window.features.get(name)
    if values is None:
        return np.empty(0), 0
    present = window.feature_present.get(name, ~np.isnan(values))
    carried = values[present]
    finite = np.isfinite(carried)
    return carried[finite], int(carried.size - np.count_nonzero(finite))


# --------------------------------------------------------------------------- references


def build_reference(
    window: EventWindow,
    *,
    stream: str,
    source: str,
    thresholds: Thresholds = _DEFAULT,
    bins: int = PSI_BINS,
) -> dict[str, Any]:
    """The reference of ``window``: per feature its edges, bin shares and count.
    FeatureReferenceError when there is no feature, or a feature has fewer than
    ``psi_min_events`` finite values (a reference too small to tell drift from chance);
    malformed events are refused too."""
    if window.malformed:
        first = window.malformed[0]
        raise FeatureReferenceError(
            f"{source}: {len(window.malformed)} malformed events (first {first.stream_id}: "
            f"{first.reason}); a reference must be clean"
        )
    features: dict[str, Any] = {}
    short: list[str] = []
    for name in sorted(window.features):
        values, nonfinite = _finite(window, name)
        if values.size < thresholds.psi_min_events:
            short.append(f"{name} {values.size}")
            continue
        edges = quantile_edges(values, bins)
        counts = bin_counts(values, edges)
        features[name] = {
            "n": int(values.size),
            "nonfinite": nonfinite,
            "edges": [float(edge) for edge in edges],
            "proportions": [float(c) / values.size for c in counts],
        }
    if short:
        raise FeatureReferenceError(
            f"{source}: too few finite values for a reference (< {thresholds.psi_min_events}): "
            + ", ".join(short)
        )
    if not features:
        raise FeatureReferenceError(f"{source}: {window.n} events, none with features")
    times = window.timestamp_ms
    return {
        "format": REFERENCE_FORMAT,
        "version": REFERENCE_VERSION,
        "source": source,
        "stream": stream,
        "event_count": window.n,
        "first_id": window.first_id,
        "last_id": window.last_id,
        "first_ts": iso_ms(float(times.min()) / 1000.0) if times.size else None,
        "last_ts": iso_ms(float(times.max()) / 1000.0) if times.size else None,
        "bins": bins,
        "epsilon": PSI_EPSILON,
        "features": features,
    }


def _bad(where: str, what: str) -> FeatureReferenceError:
    return FeatureReferenceError(f"feature reference {where}: {what}")


def _number_list(where: str, name: str, key: str, value: Any) -> list[float]:
    if not isinstance(value, list) or not all(
        isinstance(item, int | float) and not isinstance(item, bool) and math.isfinite(item)
        for item in value
    ):
        raise _bad(where, f"feature {name!r}: {key} is not a list of finite numbers")
    return [float(item) for item in value]


def validate_reference(data: Any, where: str = "(given)") -> dict[str, Any]:
    """``data`` if it is a reference this version can use, else FeatureReferenceError saying why."""
    if not isinstance(data, Mapping):
        raise _bad(where, "not a JSON object")
    if data.get("format") != REFERENCE_FORMAT:
        raise _bad(where, f"format {data.get('format')!r} is not {REFERENCE_FORMAT!r}")
    if data.get("version") != REFERENCE_VERSION:
        raise _bad(
            where, f"version {data.get('version')!r} is not {REFERENCE_VERSION} (write it again)"
        )
    count = data.get("event_count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise _bad(where, f"event_count {count!r} is not a positive integer")
    features = data.get("features")
    if not isinstance(features, Mapping) or not features or len(features) > MAX_FEATURES:
        raise _bad(where, f"features must be an object of 1 to {MAX_FEATURES} features")
    for name, entry in features.items():
        if not isinstance(name, str) or not _FEATURE_NAME.fullmatch(name):
            raise _bad(where, f"not a feature name: {name!r}")
        if not isinstance(entry, Mapping):
            raise _bad(where, f"feature {name!r} is not an object")
        n = entry.get("n")
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= count:
            raise _bad(where, f"feature {name!r}: n {n!r} is not an integer in [1, {count}]")
        edges = _number_list(where, name, "edges", entry.get("edges"))
        shares = _number_list(where, name, "proportions", entry.get("proportions"))
        if not edges or any(b <= a for a, b in itertools.pairwise(edges)):
            raise _bad(where, f"feature {name!r}: edges are not strictly increasing")
        if len(shares) != len(edges) + 1:
            raise _bad(where, f"feature {name!r}: {len(shares)} proportions for {len(edges)} edges")
        if any(share < 0 for share in shares) or abs(sum(shares) - 1.0) > 1e-6:
            raise _bad(where, f"feature {name!r}: proportions are not shares summing to 1")
    return dict(data)


def load_reference(path: str) -> dict[str, Any]:
    """The reference file at ``path``, validated; FeatureReferenceError for anything wrong."""
    if not isinstance(path, str) or not path:
        raise _bad(repr(path), "no path given")
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_REFERENCE_BYTES + 1)
    except OSError as exc:
        raise _bad(path, f"cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_REFERENCE_BYTES:
        raise _bad(path, f"larger than {MAX_REFERENCE_BYTES} bytes, not a reference")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _bad(path, f"not valid JSON: {exc}") from None
    return validate_reference(data, path)


def write_reference(path: str, reference: Mapping[str, Any]) -> None:
    """Write ``reference`` (validated first) to ``path``, whole or not at all, mode 0640."""
    validate_reference(reference, path)
    text = json.dumps(reference, indent=2, sort_keys=True, allow_nan=False) + "\n"
    write_atomic(path, text.encode("utf-8"), REFERENCE_MODE)


# --------------------------------------------------------------------------- judging


def window_counts(reference: Mapping[str, Any], window: EventWindow) -> dict[str, list[int]]:
    """Per reference feature, the window's finite values counted in the reference's bins."""
    counts: dict[str, list[int]] = {}
    for name, entry in reference["features"].items():
        values, _ = _finite(window, name)
        counts[name] = bin_counts(values, np.asarray(entry["edges"])).tolist()
    return counts


def describe_reference(reference: Mapping[str, Any], path: str | None = None) -> dict[str, Any]:
    """What a result says of its reference (no bins): where from, how many events, when."""
    keys = ("source", "stream", "event_count", "first_id", "last_id", "first_ts", "last_ts")
    described = {key: reference.get(key) for key in keys}
    described["path"] = path
    return described


def not_judged(reason: str, thresholds: Thresholds = _DEFAULT) -> dict[str, Any]:
    """The drift part of a result when no drift was asked for (``status`` ``not_judged``)."""
    return _result("not_judged", None, 0, {}, [], [], thresholds, reason=reason)


def failed(reason: str, thresholds: Thresholds = _DEFAULT) -> dict[str, Any]:
    """The drift part of a result whose reference could not be had: ``error``, one blocker."""
    return _result(
        "error", None, 0, {}, [f"feature drift: {reason}"], [], thresholds, reason=reason
    )


def _result(
    status: str,
    reference: dict[str, Any] | None,
    current_events: int,
    features: dict[str, Any],
    blockers: list[str],
    warnings: list[str],
    thresholds: Thresholds,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "status": status,
        "reference": reference,
        "current_events": current_events,
        "features": features,
        "blockers": blockers,
        "warnings": warnings,
        "thresholds": {
            "psi_warn": thresholds.psi_warn,
            "psi_block": thresholds.psi_block,
            "psi_min_events": thresholds.psi_min_events,
        },
        **extra,
    }


def drift_from_counts(
    reference: Mapping[str, Any],
    counts: Mapping[str, list[int]],
    current_events: int,
    thresholds: Thresholds = _DEFAULT,
    *,
    path: str | None = None,
    extra_features: tuple[str, ...] = (),
    undecided_blocks: bool = True,
) -> dict[str, Any]:
    """Judge the current window's bin ``counts`` (per reference feature, from
    :func:`window_counts`, summed over reads as the monitor does) against ``reference``.

    ``status``: ``block`` (a feature PSI > psi_block, or a reference feature absent from a
    long enough window), ``undecided`` (a feature has < psi_min_events values on either side),
    ``warn`` (PSI > psi_warn), else ``ok``. ``blockers`` holds the block sentences, and with
    ``undecided_blocks`` (the gate) the undecided ones; ``warnings`` the rest.
    """
    t = thresholds
    ref_events = reference.get("event_count")
    features: dict[str, Any] = {}
    blockers: list[str] = []
    warnings: list[str] = []
    undecided: list[str] = []
    for name, entry in reference["features"].items():
        counted = np.asarray(counts.get(name) or [0] * (len(entry["edges"]) + 1), dtype=np.int64)
        n_cur, n_ref = int(counted.sum()), int(entry["n"])
        row: dict[str, Any] = {
            "psi": None,
            "reference_n": n_ref,
            "current_n": n_cur,
            "bins": len(entry["proportions"]),
            "status": "undecided",
        }
        features[name] = row
        sizes = f"reference {n_ref} values, current {n_cur}"
        if n_cur == 0 and current_events >= t.psi_min_events:
            row["status"] = "missing"
            blockers.append(
                f"feature drift: {name} is in the reference ({n_ref} values) but has no "
                f"finite value in the {current_events} current events"
            )
            continue
        if min(n_cur, n_ref) < t.psi_min_events:
            undecided.append(
                f"feature drift not decided: {name} has {min(n_cur, n_ref)} values "
                f"< {t.psi_min_events} ({sizes})"
            )
            continue
        value = psi(np.asarray(entry["proportions"]), counted)
        row["psi"] = round(value, 6)
        if value > t.psi_block:
            row["status"] = "block"
            blockers.append(f"feature drift: {name} PSI {value:.3f} > {t.psi_block:g} ({sizes})")
        elif value > t.psi_warn:
            row["status"] = "warn"
            warnings.append(f"feature drift: {name} PSI {value:.3f} > {t.psi_warn:g} ({sizes})")
        else:
            row["status"] = "ok"
    for name in extra_features:
        warnings.append(f"feature drift: {name} is not in the reference, not judged")
    if undecided_blocks:
        blockers.extend(undecided)
    else:
        warnings.extend(undecided)
    if any(row["status"] in ("block", "missing") for row in features.values()):
        status = "block"
    elif undecided:
        status = "undecided"
    elif warnings and any(row["status"] == "warn" for row in features.values()):
        status = "warn"
    else:
        status = "ok"
    described = describe_reference(reference, path)
    described["event_count"] = ref_events
    return _result(status, described, current_events, features, blockers, warnings, t)


def feature_drift(
    reference: Mapping[str, Any],
    window: EventWindow,
    thresholds: Thresholds = _DEFAULT,
    *,
    path: str | None = None,
    undecided_blocks: bool = True,
) -> dict[str, Any]:
    """Judge ``window`` against ``reference`` (:func:`drift_from_counts` on its counts)."""
    extra = tuple(sorted(name for name in window.features if name not in reference["features"]))
    return drift_from_counts(
        reference,
        window_counts(reference, window),
        window.n,
        thresholds,
        path=path,
        extra_features=extra,
        undecided_blocks=undecided_blocks,
    )
