"""Feature drift in the canary monitor (model_safety.monitor.drift_watch through assess): each
probe's bin counts of the canary's new events add up since the activation and are judged
against the site's reference; PSI > 0.25 rolls back ("Feature drift: atr_value PSI=..."), PSI >
0.1 is a warning, fewer than 200 values is not decided (never a rollback: at 1 event/min the
first 200 minutes), a reference that cannot be read is a warning and an inconclusive end, and
a new activation starts the counts again. The events are healthy for every other rule."""

from __future__ import annotations

import numpy as np
import pytest

from model_safety.judgement.drift import bin_counts, build_reference
from model_safety.monitor.assess import end_of_watch
from model_safety.monitor.settings import INCONCLUSIVE, SAFE
from tests.monitor_events import healthy_rows
from tests.unit.test_drift import normal_rows, window_of
from tests.unit.test_monitor_assess import (
    DEFAULT,
    OTHER_INVOCATION,
    Host,
    activation,
    probe,
    service,
)

PATH = "/var/lib/model-safety/feature_reference.json"
SEED_REFERENCE = build_reference(window_of(normal_rows(2000, seed=1)), stream="s", source="t")
REFERENCE = {**SEED_REFERENCE, "path": PATH}


def drifted(n: int, shift: float, seed: int) -> dict:
    """The probe's ``drift`` of n events whose feature ``a`` is shifted by ``shift`` std."""
    rng = np.random.default_rng(seed)
    values = {"a": rng.normal(shift, 1.0, n), "b": rng.uniform(0.0, 1.0, n)}
    counts = {
        name: bin_counts(values[name], np.asarray(entry["edges"])).tolist()
        for name, entry in REFERENCE["features"].items()
    }
    return {"counts": counts, "events": n}


def check(host: Host, n: int, shift: float, seed: int, step_ms: int, **extra) -> dict:
    """One probe of n new healthy canary events ``step_ms`` apart, their features shifted."""
    rows = healthy_rows(host.rng, n, start_ms=host.next_ms, step_ms=step_ms)
    host.next_ms += max(n, 1) * step_ms
    item = probe(rows, **extra)
    item.update(drift_reference=REFERENCE, drift=drifted(n, shift, seed))
    return host.check(item)


def feature_violations(result: dict) -> list[dict]:
    return [v for v in result["triggered"] if v["rule"] == "feature_drift"]


@pytest.mark.parametrize(
    ("per_check", "step_ms"),
    [(1, 60_000), (3000, 10)],
    ids=["1_per_min_30s_checks", "100_per_s"],
)
def test_a_shifted_feature_rolls_back_once_decided_never_before(per_check, step_ms) -> None:
    host = Host(seed=3)
    seen = 0
    results = []
    for i in range(400 // per_check + 1):
        n = min(per_check, 400 - seen) if per_check > 1 else 1
        result = check(host, n, shift=3.0, seed=100 + i, step_ms=step_ms)
        seen += n
        results.append(result)
        if feature_violations(result):
            break
        # Not decided below 200 values: no violation, no finding of drift.
        assert seen < 200 + per_check, (seen, host.state["drift"])
    decided = feature_violations(results[-1])
    assert decided, host.state["drift"]
    assert seen >= 200
    violation = decided[0]
    assert violation["feature"] == "a" and violation["threshold"] == 0.25
    assert violation["text"] == (
        f"Feature drift: a PSI={violation['value']:.2f} (>0.25) over {seen} events since the "
        "activation (reference 2000 values)"
    )
    assert all(not feature_violations(r) for r in results[:-1])
    assert host.state["drift"]["events"] == seen


def test_in_distribution_features_stay_quiet_and_end_safe() -> None:
    host = Host(seed=4)
    for i in range(10):
        result = check(host, 60, shift=0.0, seed=200 + i, step_ms=1000)
        assert not feature_violations(result)
        assert not [f for f in result["findings"] if f["rule"] == "feature_drift"]
    assert host.state["drift"]["status"] == "ok"
    assert host.state["drift"]["events"] == 600
    end = end_of_watch(host.state, DEFAULT)
    assert not [m for m in end["missing"] if "feature drift" in m]


def test_a_moderate_shift_is_a_warning() -> None:
    host = Host(seed=5)
    result = {}
    # A 0.4 std shift: PSI about 0.4^2 = 0.16, sampling adds about 0.01 at 1000+ events.
    for i in range(4):
        result = check(host, 1000, shift=0.4, seed=300 + i, step_ms=1000)
        assert not feature_violations(result)
        warning = [f for f in result["findings"] if f["rule"] == "feature_drift"]
        assert len(warning) == 1 and 0.12 < warning[0]["value"] < 0.22, warning
    assert warning[0]["text"].startswith("feature drift: a PSI=0.")
    assert "(>0.1) over 4000 events since the activation" in warning[0]["text"]


def test_too_few_events_at_the_end_is_inconclusive_not_a_rollback() -> None:
    host = Host(seed=6)
    for i in range(150):  # 150 minutes at 1 event/min
        result = check(host, 1, shift=3.0, seed=400 + i, step_ms=60_000)
        assert not feature_violations(result)
    assert host.state["drift"]["status"] == "undecided"
    end = end_of_watch(host.state, DEFAULT)
    assert end["result"] == INCONCLUSIVE
    assert "feature drift not decided: a has 150 values < 200" in " ".join(end["missing"])


def test_an_unreadable_reference_is_a_warning_and_an_inconclusive_end() -> None:
    host = Host(seed=7)
    rows = healthy_rows(host.rng, 60, start_ms=host.next_ms)
    error = f"feature reference {PATH}: cannot be read: No such file or directory"
    result = host.check({**probe(rows), "drift_error": error})
    assert not feature_violations(result)
    assert [f["text"] for f in result["findings"] if f["rule"] == "feature_drift"] == [
        f"feature drift not judged: {error}"
    ]
    assert f"feature drift not judged: {error}" in end_of_watch(host.state, DEFAULT)["missing"]


def test_without_a_reference_nothing_is_said_of_drift() -> None:
    host = Host(seed=8)
    for _ in range(5):
        result = host.healthy(60)
        assert not [f for f in result["findings"] + result["triggered"] if "drift" in f["rule"]]
    assert host.state["drift"] is None
    assert end_of_watch(host.state, DEFAULT)["result"] in (SAFE, INCONCLUSIVE)
    assert not [m for m in end_of_watch(host.state, DEFAULT)["missing"] if "drift" in m]


def test_a_new_activation_starts_the_counts_again() -> None:
    host = Host(seed=9)
    check(host, 150, shift=3.0, seed=500, step_ms=1000)
    assert host.state["drift"]["events"] == 150
    newer = activation(OTHER_INVOCATION, ts="2026-01-10T13:00:00.000Z")
    host.check(probe([], svc=service(invocation=OTHER_INVOCATION), record=newer))
    assert host.state["drift"] is None
    result = check(
        host, 150, shift=3.0, seed=501, step_ms=1000,
        svc=service(invocation=OTHER_INVOCATION), record=newer,
    )  # fmt: skip
    assert not feature_violations(result)
    assert host.state["drift"]["events"] == 150
