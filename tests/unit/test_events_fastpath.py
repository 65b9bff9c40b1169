"""The fast path of model_safety.telemetry.events (regular expressions for the engine's canonical
layout) gives exactly the EventWindow of the general parser, for engine events and mutations
of them."""

from __future__ import annotations

import json
import random
import re
from dataclasses import fields
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ai_engine.config import load_config
from ai_engine.engine import Engine
from ai_engine.models import BEHAVIOURS
from model_safety.telemetry.events import EventWindow, WindowBuilder
from model_safety.telemetry.fastpath import FastPath

START = datetime(2026, 1, 10, 12, 0, 0, tzinfo=UTC)
SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)


def engine_payloads(count: int, **env: str) -> list[bytes]:
    engine = Engine(load_config({"ENGINE_SEED": "3", **env}))
    return [
        engine.step(i / 10, START + timedelta(milliseconds=37 * i)).json.encode()
        for i in range(count)
    ]


def pool() -> list[bytes]:
    """Engine events of every simulated behaviour, shadow on and off, every feature mode."""
    payloads = []
    for behaviour in BEHAVIOURS:
        for shadow in ("0", "1"):
            for features in ("healthy", "nan", "flatline"):
                payloads += engine_payloads(
                    12,
                    SIM_LGBM=behaviour,
                    SIM_PATCHTST=behaviour,
                    PATCHTST_SHADOW_ONLY=shadow,
                    SIM_FEATURES=features,
                )
    return payloads


POOL = pool()
NUMBER = re.compile(rb"(?<=[:])(?:-?[0-9][0-9.eE+-]*|NaN|-?Infinity)(?=[,}])")
STRING = re.compile(rb'(?<=:)"[^"]*"')
NUMBERS = [
    b"0", b"1", b"-0", b"-0.0", b"0.0", b"1.0", b"1.00", b"1.0001", b"0.99999999999999999",
    b"2", b"-1", b"01", b"1.", b".5", b"1e0", b"1E-5", b"0.5e1", b"5e-324", b"1e400", b"-1e400",
    b"NaN", b"Infinity", b"-Infinity", b"nan", b"1" * 320, b"3" * 4400, b"0x1", b"1_0", b" 1",
    b"true", b"null", b'"1"', b"1e-400", b"9" * 301 + b".5",
]  # fmt: skip
STRINGS = [
    b'""', b'"BTC\\u0055SDT"', b'"\xc3\xa9"', b'"\xff"', b'"a\x01"', b'"BUY"', b'"SELL"',
    b'"HOLD"', b'"buy"', b'"2026-01-10T12:00:00Z"', b'"2026-01-10T12:00:00.123+00:00"',
    b'"2026-13-10T12:00:00.123Z"', b'"2026-01-10T12:00:00.123"',
    b'"2026-01-10T12:00:00.1234Z"', b'"2026-01-10 12:00:00.123Z"', b'"2026-01-10T12:00:60.123Z"',
    b'"\xd9\xa2026-01-10T12:00:00.123Z"', b'"xgb_shadow"', b"1",
]  # fmt: skip
BYTES = list(b'0123456789-+.eE",:{}[] \\Nntrue\x00\xff')


def build(entries: list[tuple[bytes, bytes]], pages: list[int], fast: bool) -> EventWindow:
    builder = WindowBuilder(fast=fast)
    start = 0
    for stop in [*pages, len(entries)]:
        builder.add(entries[start:stop])
        start = stop
    return builder.build()


def assert_same(fast: EventWindow, slow: EventWindow) -> None:
    """Every array equal in dtype and bytes (NaN positions and the sign of zeros included)."""

    def same(a: np.ndarray, b: np.ndarray, where: str) -> None:
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert a.tobytes() == b.tobytes(), where

    for spec in fields(EventWindow):
        a, b = getattr(fast, spec.name), getattr(slow, spec.name)
        if isinstance(a, np.ndarray):
            same(a, b, spec.name)
        elif isinstance(a, dict):
            assert list(a) == list(b), spec.name
            for name in a:
                if isinstance(a[name], np.ndarray):
                    same(a[name], b[name], f"{spec.name} {name}")
                else:
                    for part in (
                        "present",
                        "inactive",
                        "shadow",
                        "action",
                        "confidence",
                        "capped",
                    ):
                        same(getattr(a[name], part), getattr(b[name], part), f"{name} {part}")
        else:
            assert a == b, spec.name


def entries_of(payloads: list[bytes]) -> list[tuple[bytes, bytes]]:
    return [(f"{1_768_000_000_000 + i}-0".encode(), p) for i, p in enumerate(payloads)]


def fast_path_hits(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each payload parsed from now on took the fast path, in order."""
    hits: list[bool] = []
    parse = FastPath.parse

    def counted(self: FastPath, raw: bytes) -> tuple | None:
        values = parse(self, raw)
        hits.append(values is not None)
        return values

    monkeypatch.setattr(FastPath, "parse", counted)
    return hits


def test_engine_events_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    hits = fast_path_hits(monkeypatch)
    entries = entries_of(POOL)
    window = build(entries, [500, 1000], fast=True)
    assert window.n == len(POOL) and not window.malformed
    assert sum(hits) == len(POOL) - 1  # all but the first, which teaches the layout
    assert_same(window, build(entries, [], fast=False))


@pytest.mark.parametrize("spots, values", [(NUMBER, NUMBERS), (STRING, STRINGS)])
def test_every_value_replaced(spots: re.Pattern[bytes], values: list[bytes]) -> None:
    """Each number (string) of some engine events replaced by each odd value in turn."""
    payloads = []
    for payload in POOL[::23]:
        for spot in spots.finditer(payload):
            payloads += [payload[: spot.start()] + v + payload[spot.end() :] for v in values]
    entries = entries_of(payloads)
    window = build(entries, [len(entries) // 2], fast=True)
    assert window.n and window.malformed
    assert_same(window, build(entries, [], fast=False))


def mutate(payload: bytes, rnd: random.Random) -> bytes:
    kind = rnd.choice(["number", "string", "byte", "delete", "insert", "cut", "layout"])
    if kind == "layout":  # another layout, still compact: drop or move a key
        try:
            event = json.loads(payload)
            breakdown, features = event["model_breakdown"], event["features"]
        except (ValueError, KeyError, TypeError):
            return payload
        where = rnd.choice([event, breakdown, features])
        if where:
            key = rnd.choice(sorted(where))
            value = where.pop(key)
            if rnd.random() < 0.5:
                where[key] = value  # now last
        return json.dumps(event, separators=(",", ":")).encode()
    if kind in ("number", "string"):
        spots = list((NUMBER if kind == "number" else STRING).finditer(payload))
        if not spots:
            return payload
        spot = rnd.choice(spots)
        new = rnd.choice(NUMBERS if kind == "number" else STRINGS)
        return payload[: spot.start()] + new + payload[spot.end() :]
    at = rnd.randrange(len(payload) or 1)
    if kind == "byte":
        return payload[:at] + bytes([rnd.choice(BYTES)]) + payload[at + 1 :]
    if kind == "delete":
        return payload[:at] + payload[at + 1 :]
    if kind == "insert":
        return payload[:at] + bytes([rnd.choice(BYTES)]) + payload[at:]
    return payload[:at]


@SETTINGS
@given(st.randoms(use_true_random=False), st.integers(1, 60), st.floats(0.0, 1.0))
def test_fast_path_equals_the_general_parser(rnd: random.Random, count: int, share: float) -> None:
    """Random engine events, a share of them mutated (1-3 times), in random pages."""
    assert_both_paths_alike(rnd, POOL, count, share)


def assert_both_paths_alike(
    rnd: random.Random, pool: list[bytes], count: int, share: float
) -> None:
    """``count`` events of ``pool``, a ``share`` of them mutated, parsed in random pages by the
    fast path and by the general parser alone: the same window."""
    payloads = []
    for _ in range(count):
        payload = rnd.choice(pool)
        if rnd.random() < share:
            for _ in range(rnd.randint(1, 3)):
                payload = mutate(payload, rnd)
        payloads.append(payload)
    entries = entries_of(payloads)
    pages = sorted(rnd.randint(0, count) for _ in range(rnd.randint(0, 3)))
    assert_same(build(entries, pages, fast=True), build(entries, pages, fast=False))
