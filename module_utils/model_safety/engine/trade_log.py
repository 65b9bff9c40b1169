"""The trade log side of the role proof: the engine's SQLite log opened read-only, and the
rows after the cutover that credit a model (read incrementally by id).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

from .. import utctime
from ..site_defaults import DEFAULT_TRADE_TABLE
from .role_events import MAX_VIOLATIONS

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_ms(ms: int) -> str:
    """``2026-01-10T12:00:00.123Z``, the trade log's ``created_at`` format, of epoch ``ms``."""
    second = datetime.fromtimestamp(ms // 1000, UTC)
    return utctime.iso_ms(second.replace(microsecond=ms % 1000 * 1000))


def created_at_ms(text: object) -> int | None:
    """Epoch milliseconds of a ``created_at`` value (ISO-8601; without a zone, UTC as SQLite
    writes it), or None when it is not a time."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


class TradeLogError(Exception):
    """The trade log is missing, not a database, lacks its table or cannot be read."""


def open_trade_log(db_path: str, table: str = DEFAULT_TRADE_TABLE) -> sqlite3.Connection:
    """A read-only connection (``mode=ro``: nothing can be written) with ``table`` checked."""
    if not os.path.isfile(db_path):
        raise TradeLogError(f"trade log {db_path} does not exist (or is not a file)")
    uri = "file:" + quote(os.path.abspath(db_path)) + "?mode=ro"
    try:
        connection = sqlite3.connect(uri, uri=True, timeout=5.0)
    except sqlite3.Error as exc:
        raise TradeLogError(f"trade log {db_path} cannot be opened read-only: {exc}") from None
    try:
        connection.execute(f"SELECT id, created_at, model_source FROM {table} LIMIT 0")
    except sqlite3.Error as exc:
        connection.close()
        raise TradeLogError(f"trade log {db_path} unusable: {exc}") from None
    return connection


def credits_model(model_source: object, model: str) -> bool:
    """True when the comma-separated ``model_source`` names ``model``."""
    return isinstance(model_source, str) and model in (
        name.strip() for name in model_source.split(",")
    )


@dataclass
class TradeRows:
    """Trade log rows after the cutover that credit the model (read incrementally by id)."""

    model: str
    cutover_ms: int
    table: str = DEFAULT_TRADE_TABLE
    last_row_id: int = -1
    count: int = 0
    row_ids: list[int] = field(default_factory=list)
    unparsable: list[int] = field(default_factory=list)

    def read(self, connection: sqlite3.Connection, db_path: str) -> None:
        # The indexed created_at prefilter is only a lower bound (to the second); the exact
        # comparison is made on the parsed time below.
        lower = iso_ms(self.cutover_ms - self.cutover_ms % 1000)[:19]
        query = (
            f"SELECT id, created_at, model_source FROM {self.table} "
            "WHERE id > ? AND created_at >= ? AND instr(model_source, ?) > 0 ORDER BY id"
        )
        try:
            cursor = connection.execute(query, (self.last_row_id, lower, self.model))
            for row_id, created_at, model_source in cursor:
                self.last_row_id = row_id
                if not credits_model(model_source, self.model):
                    continue
                ms = created_at_ms(created_at)
                if ms is None:
                    if len(self.unparsable) < MAX_VIOLATIONS:
                        self.unparsable.append(row_id)
                elif ms > self.cutover_ms:
                    self.count += 1
                    if len(self.row_ids) < MAX_VIOLATIONS:
                        self.row_ids.append(row_id)
        except sqlite3.Error as exc:
            raise TradeLogError(f"trade log {db_path} unreadable: {exc}") from None
