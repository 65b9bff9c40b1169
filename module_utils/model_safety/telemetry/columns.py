"""One page of parsed events as numpy columns (:class:`Chunk`), built from the parser's flat
lists without a Python loop, and pages merged into larger ones as the window grows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .contract import NO_ACTION, Malformed


@dataclass
class Chunk:
    """One page as numpy arrays (dense, page length), models and features included."""

    length: int
    columns: dict[str, np.ndarray]
    # present, inactive, shadow, action, confidence, capped
    models: dict[str, tuple[np.ndarray, ...]]
    features: dict[str, tuple[np.ndarray, np.ndarray]]  # values, present
    malformed: list[Malformed]
    first_id: str | None
    last_id: str | None


# The per-event tuple committed by the parser, in this order.
COLUMN_TYPES = {
    "side": np.int8,
    "confidence": np.float64,
    "consensus_count": np.int16,
    "total_models": np.int16,
    "timestamp_ms": np.int64,
    "stream_ms": np.int64,
    "symbol": np.int32,
    "price": np.float64,
    "payload_bytes": np.int32,
}
INT16_MAX = 32767
MODEL_FIELDS = 6
"""Values per model entry in the parser's flat list: name, action code, confidence, inactive,
shadow, capped."""
_MODEL_TYPES = (np.bool_, np.bool_, np.bool_, np.int8, np.float64, np.bool_)
_INT32_MAX = 2**31 - 1


MERGE_PAGES = 32
"""Pages added between two merges of the recent pages (see WindowBuilder._merge_recent)."""


def merge_chunks(chunks: list[Chunk]) -> Chunk:
    """One chunk from ``chunks`` (in time order), releasing each part once it is copied."""
    if len(chunks) == 1:
        return chunks[0]
    length = sum(c.length for c in chunks)
    columns = {
        name: _concat([c.columns.pop(name) for c in chunks], dtype)
        for name, dtype in COLUMN_TYPES.items()
    }
    models: dict[str, tuple[np.ndarray, ...]] = {}
    for name in _ordered_names(chunks, "models"):
        parts = [c.models.pop(name, None) or _absent_model(c.length) for c in chunks]
        models[name] = tuple(
            _concat([p[i] for p in parts], dtype) for i, dtype in enumerate(_MODEL_TYPES)
        )
        del parts
    features: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in _ordered_names(chunks, "features"):
        parts = [c.features.pop(name, None) or _absent_feature(c.length) for c in chunks]
        features[name] = (
            _concat([p[0] for p in parts], np.float64),
            _concat([p[1] for p in parts], np.bool_),
        )
        del parts
    malformed = [m for c in chunks for m in c.malformed]
    ids = [(c.first_id, c.last_id) for c in chunks if c.first_id is not None]
    return Chunk(
        length=length,
        columns=columns,
        models=models,
        features=features,
        malformed=malformed,
        first_id=ids[0][0] if ids else None,
        last_id=ids[-1][1] if ids else None,
    )


def page_chunk(
    rows: list,
    models_flat: tuple[list, list[int]],
    features_flat: tuple[list[str], list[float], list[int]],
    malformed: list[Malformed],
    first_id: str | None,
    last_id: str | None,
) -> Chunk:
    """Turn one page's flat lists into dense numpy arrays (slices and numpy, no Python loop)."""
    stride = len(COLUMN_TYPES)
    length = len(rows) // stride
    columns = {}
    for i, (name, dtype) in enumerate(COLUMN_TYPES.items()):
        if name == "payload_bytes":
            column = np.array(rows[i::stride], dtype=np.int64).clip(0, _INT32_MAX).astype(dtype)
        else:
            column = np.array(rows[i::stride], dtype=dtype)
        columns[name] = column

    models = {}
    flat, counts = models_flat
    if flat:
        stride = MODEL_FIELDS
        names = flat[0::stride]
        fields = (
            np.array(flat[1::stride], dtype=np.int8),
            np.array(flat[2::stride], dtype=np.float64),
            np.array(flat[3::stride], dtype=np.bool_),
            np.array(flat[4::stride], dtype=np.bool_),
            np.array(flat[5::stride], dtype=np.bool_),
        )
        for name, rows_of, select in _layout(names, counts, length):
            models[name] = _dense_model(length, rows_of, *(select(f) for f in fields))

    features = {}
    keys, values, counts = features_flat
    if keys:
        value_col = np.array(values, dtype=np.float64)
        for name, rows_of, select in _layout(keys, counts, length):
            features[name] = _dense_feature(length, rows_of, select(value_col))
    return Chunk(length, columns, models, features, malformed, first_id, last_id)


def _layout(names: list[str], counts: list[int], length: int) -> list[tuple[str, Any, Any]]:
    """(name, event rows, selector of that name's values) per distinct name, first seen first.

    The usual page has the same names in the same order in every event: then the values are
    a (length, width) matrix and each name is a column of it (no search at all).
    """
    width = counts[0] if counts else 0
    if width and counts.count(width) == length and names == names[:width] * length:
        rows_of = np.arange(length)
        return [
            (name, rows_of, lambda f, j=j: f.reshape(length, width)[:, j])
            for j, name in enumerate(names[:width])
        ]
    event_of = np.repeat(np.arange(length), np.array(counts, dtype=np.intp))
    order = list(dict.fromkeys(names))
    index = {name: i for i, name in enumerate(order)}
    which = np.fromiter(map(index.__getitem__, names), dtype=np.intp, count=len(names))
    layout = []
    for i, name in enumerate(order):
        selected = which == i
        layout.append((name, event_of[selected], lambda f, s=selected: f[s]))
    return layout


def _dense_model(
    length: int, rows: Any, codes: Any, confs: Any, inactive: Any, shadow: Any, capped: Any
) -> tuple[np.ndarray, ...]:
    """present, inactive, shadow, action, confidence, capped of one model over a page of
    ``length``."""
    if len(rows) == length:  # in every event of the page (names are unique per event)
        return (
            np.ones(length, dtype=np.bool_),
            np.ascontiguousarray(inactive, dtype=np.bool_),
            np.ascontiguousarray(shadow, dtype=np.bool_),
            np.ascontiguousarray(codes, dtype=np.int8),
            np.ascontiguousarray(confs, dtype=np.float64),
            np.ascontiguousarray(capped, dtype=np.bool_),
        )
    index = np.asarray(rows, dtype=np.intp)
    present, inactive_col, shadow_col, action, confidence, capped_col = _absent_model(length)
    present[index] = True
    inactive_col[index] = inactive
    shadow_col[index] = shadow
    action[index] = codes
    confidence[index] = confs
    capped_col[index] = capped
    return present, inactive_col, shadow_col, action, confidence, capped_col


def _dense_feature(length: int, rows: Any, values: Any) -> tuple[np.ndarray, np.ndarray]:
    """values (NaN where absent) and presence of one feature over a page of ``length``."""
    if len(rows) == length:
        return np.ascontiguousarray(values, dtype=np.float64), np.ones(length, dtype=np.bool_)
    index = np.asarray(rows, dtype=np.intp)
    column, present = _absent_feature(length)
    column[index] = values
    present[index] = True
    return column, present


def _absent_model(length: int) -> tuple[np.ndarray, ...]:
    return (
        np.zeros(length, dtype=np.bool_),
        np.zeros(length, dtype=np.bool_),
        np.zeros(length, dtype=np.bool_),
        np.full(length, NO_ACTION, dtype=np.int8),
        np.full(length, np.nan, dtype=np.float64),
        np.zeros(length, dtype=np.bool_),
    )


def _absent_feature(length: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full(length, np.nan, dtype=np.float64), np.zeros(length, dtype=np.bool_)


def _ordered_names(chunks: list[Chunk], kind: str) -> list[str]:
    """Names in order of first appearance (oldest chunk first)."""
    names: dict[str, None] = {}
    for chunk in chunks:
        for name in getattr(chunk, kind):
            names.setdefault(name, None)
    return list(names)


def _concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    if not parts:
        return np.zeros(0, dtype=dtype)
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts).astype(dtype, copy=False)
