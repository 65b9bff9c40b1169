"""The quality gate written the plain way: per event, in Python, no numpy (a baseline).

It reads the same window (the newest N entries, redis-py ``xrange`` pages), decodes every
payload with ``json.loads``, checks it fail-closed like ``model_safety.telemetry.events``,
keeps lists of Python values per model and computes the DESIGN.md rules with plain Python
(population
std, numpy-style linear percentiles). ``bench/gate_bench.py`` runs it as a process next to
``model-safety gate`` and reports the ratio; it is kept here only as that yardstick.

    python bench/plain_gate.py --redis-url redis://127.0.0.1:6379/0 --stream S --count N
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import datetime
from typing import Any

import redis

ACTIONS = ("BUY", "SELL", "HOLD")
MIN_EVENTS = 200
MAX_ACTION_SHARE = 0.70
MIN_CONF_STD = 0.05
MIN_SPREAD = 0.12
CONSTANT_STD = 0.01
HOLD_COLLAPSE_SHARE = 0.85
HOLD_MEDIAN = (0.40, 0.60)
MAX_INACTIVE_SHARE = 0.05
PAGE = 2000


class Bad(Exception):
    pass


def number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check(event: Any) -> dict[str, Any]:
    """The event's model entries by name, or Bad (the first reason)."""
    if not isinstance(event, dict):
        raise Bad("payload is not a JSON object")
    side = event.get("side")
    if side not in ACTIONS:
        raise Bad(f"unknown side {side!r}")
    conf = event.get("confidence")
    if not number(conf) or not math.isfinite(conf) or not 0 <= conf <= 1:
        raise Bad(f"confidence {conf!r} not in [0, 1]")
    for key in ("consensus_count", "total_models"):
        if type(event.get(key)) is not int or event[key] < 0:
            raise Bad(f"{key} is not an integer >= 0")
    stamp = event.get("timestamp")
    try:
        if datetime.fromisoformat(stamp).tzinfo is None:
            raise Bad("timestamp has no zone")
    except (TypeError, ValueError):
        raise Bad("timestamp is not ISO-8601") from None
    if not isinstance(event.get("symbol"), str) or not event["symbol"]:
        raise Bad("symbol is not a non-empty string")
    if "price" in event:
        price = event["price"]
        if not number(price) or not math.isfinite(price) or price <= 0:
            raise Bad("price is not a finite number > 0")
    breakdown = event.get("model_breakdown")
    if not isinstance(breakdown, dict):
        raise Bad("model_breakdown is not an object")
    voters = agreeing = 0
    for name, entry in breakdown.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("model"), str):
            raise Bad(f"model {name}: not an entry")
        if not isinstance(entry.get("shadow", False), bool):
            raise Bad(f"model {name}: shadow is not a boolean")
        if entry.get("inactive") is True:
            if "action" in entry or "confidence" in entry or not entry.get("inactive_reason"):
                raise Bad(f"model {name}: bad inactive entry")
            continue
        if entry.get("action") not in ACTIONS:
            raise Bad(f"model {name}: unknown action")
        value = entry.get("confidence")
        if not number(value) or not math.isfinite(value) or not 0 <= value <= 1:
            raise Bad(f"model {name}: confidence not in [0, 1]")
        if not entry.get("shadow", False):
            voters += 1
            agreeing += entry["action"] == side
    if (event["total_models"], event["consensus_count"]) != (voters, agreeing):
        raise Bad("consensus_count/total_models do not match the voting models")
    return breakdown


def percentile(ordered: list[float], q: float) -> float:
    """numpy's default (linear) percentile of a sorted list."""
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def judge(name: str, model: dict[str, Any], events: int) -> dict[str, Any]:
    confs: list[float] = model["conf"]
    n = len(confs)
    blockers = []
    if n < MIN_EVENTS:
        blockers.append(f"{n} events < {MIN_EVENTS} required")
    stats: dict[str, Any] = {"n": n, "shadow": model["shadow"] > n / 2}
    if n:
        mean = sum(confs) / n
        std = math.sqrt(sum((c - mean) ** 2 for c in confs) / n)
        ordered = sorted(confs)
        p10, median, p90 = percentile(ordered, 10), percentile(ordered, 50), percentile(ordered, 90)
        shares = {a: model["actions"][a] / n for a in ACTIONS}
        stats.update(
            actions=shares,
            conf_std=std,
            p10=p10,
            p90=p90,
            agreement=model["agree"] / n,
            hard_disagree=model["hard"] / n,
        )
        for action, share in shares.items():
            if share > MAX_ACTION_SHARE:
                blockers.append(f"action collapse: {action} {share:.1%}")
        if std < MIN_CONF_STD:
            blockers.append(f"conf_std {std:.3f}")
        if p90 - p10 < MIN_SPREAD:
            blockers.append(f"spread {p90 - p10:.3f}")
        if std < CONSTANT_STD or p10 == p90:
            blockers.append("constant output")
        if shares["HOLD"] > HOLD_COLLAPSE_SHARE and HOLD_MEDIAN[0] <= median <= HOLD_MEDIAN[1]:
            blockers.append("HOLD collapse")
    inactive = (events - n) / events if events else 1.0
    if inactive > MAX_INACTIVE_SHARE:
        blockers.append(f"inactive {inactive:.1%}")
    stats.update(passed=not blockers, blockers=[f"{name}: {b}" for b in blockers])
    return stats


def gate(client: redis.Redis, stream: str, count: int) -> dict[str, Any]:
    entries = []
    end = "+"
    while len(entries) < count:
        page = client.xrevrange(stream, max=end, min="-", count=min(PAGE, count - len(entries)))
        if not page:
            break
        entries.extend(page)
        end = "(" + page[-1][0].decode()
    entries.reverse()
    models: dict[str, dict[str, Any]] = {}
    malformed = []
    valid = 0
    for stream_id, fields in entries:
        try:
            event = json.loads(fields[b"payload"])
            breakdown = check(event)
        except (KeyError, ValueError, Bad) as exc:
            malformed.append(f"{stream_id.decode()}: {exc}")
            continue
        valid += 1
        side = event["side"]
        for name, entry in breakdown.items():
            model = models.setdefault(
                name,
                {
                    "conf": [],
                    "actions": dict.fromkeys(ACTIONS, 0),
                    "agree": 0,
                    "hard": 0,
                    "shadow": 0,
                },
            )
            if entry.get("inactive"):
                continue
            action = entry["action"]
            model["conf"].append(entry["confidence"])
            model["actions"][action] += 1
            model["agree"] += action == side
            model["hard"] += {action, side} == {"BUY", "SELL"}
            model["shadow"] += bool(entry.get("shadow"))
    results = {name: judge(name, model, valid) for name, model in models.items()}
    blockers = [b for r in results.values() if not r["shadow"] for b in r["blockers"]]
    if malformed:
        blockers.append(f"window: {len(malformed)} malformed events (first {malformed[0]})")
    if valid == 0:
        blockers.append("window: empty")
    if not any(not r["shadow"] for r in results.values()):
        blockers.append("window: no voting model")
    return {
        "verdict": "FAIL" if blockers else "PASS",
        "mode": "canary",
        "event_count": valid,
        "malformed": len(malformed),
        "blockers": blockers,
        "models": results,
    }


def main() -> int:
    if len(sys.argv) == 1:  # `make bench` runs every bench/*.py: this one only serves gate_bench
        print("plain_gate.py: the per-event baseline that bench/gate_bench.py runs; nothing alone")
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--stream", default="quantum:stream:trade.intent")
    parser.add_argument("--count", type=int, default=500)
    args = parser.parse_args()
    try:
        result = gate(redis.Redis.from_url(args.redis_url), args.stream, args.count)
    except redis.RedisError as exc:
        result = {"verdict": "FAIL", "blockers": [f"redis: {exc}"]}
    print(json.dumps(result))
    return 0 if result["verdict"] == "PASS" else 2


if __name__ == "__main__":
    sys.exit(main())
