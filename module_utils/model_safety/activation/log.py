"""The activation log: one JSON object per line, appended, never rewritten.

DESIGN.md puts it at ``/var/log/quantum/qsc_canary.jsonl``. Each record has an ``event`` (one
of EVENTS) and a ``ts`` (UTC, ``2026-01-10T12:00:00.123Z``; added when missing); the other
keys are the caller's (model, weight, sha, gate summary, rollback command, ...).

Runbooks filter the log with jq on the seed's vocabulary (DESIGN.md "Activation log
records"), so each record also gets those keys, derived from the caller's (``seed_keys``):
``timestamp`` (= ``ts``); ``action`` (ACTIONS[event]: activation -> canary_activated, shadow ->
shadow_activated, promotion -> promotion_step, activation_failed -> canary_failed, every other
event as it is); ``canary_model`` (= ``model``); and, when the record has the data,
``canary_weight`` (= ``weight``), ``cutover_ts`` (= ``cutover``), ``quality_gate_events``
(= ``gate.event_count``), ``rollback_cmd`` (= ``rollback_command``), ``trigger`` (= ``reason``,
in failures and rollbacks), ``violations`` (= ``[text]``, in a violation), ``checks_performed``
(= ``checks``) and ``duration_hours`` (= ``duration_s`` / 3600) (the last two in
monitoring_completed). They come after the caller's keys. A key the caller set is kept as it
is, and a value that cannot be read (an empty model, a weight that is no number) leaves its
key out: the record is logged either way. Older logs without these keys read as before.

Appending is safe against concurrent writers and crashes:

* the whole line (JSON, ASCII only, no newline inside, then ``\\n``) goes out in one
  ``os.write`` on an ``O_APPEND`` descriptor (looping only on a short write), then ``fsync``;
* appenders hold an exclusive ``flock`` of the file while they look at its last byte and
  write, so two of them never both repair the same torn line;
* a write or fsync that fails part-way (disk full, quota, I/O error) is taken back: the file
  is truncated to its size before the append, so a failed append leaves no torn line;
* a crash in the middle of a write leaves at most a torn LAST line; the next append first
  writes ``\\n`` (in the same write as its record) so the new record stands on its own line,
  and ``read_records`` reports the torn fragment instead of failing;
* readers take a shared ``flock``, so they never see half of a line being appended;
  ``last_record`` refuses a log whose last line is torn or unreadable: that line may be the
  newest record, and an older one returned in its place would be wrong (a monitor's window
  would start at the previous activation).

Standard library only (runs on the target through AnsiballZ).
"""

from __future__ import annotations

import errno
import fcntl
import grp
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from ..fileio import absolute_path_problem, ensure_directory, fsync_directory, write_all
from ..utctime import iso_ms

DEFAULT_LOG_PATH = "/var/log/quantum/qsc_canary.jsonl"
# Each event and the seed's ``action`` it is logged as. A failed change names what failed
# (an activation is the canary's), like rollback_failed does.
ACTIONS = {
    "activation": "canary_activated",  # canary.yml: the canary votes at its weight
    "activation_failed": "canary_failed",  # canary.yml: restored after a failed change
    "rollback_executed": "rollback_executed",  # rollback.yml, or the monitor's rollback
    "rollback_failed": "rollback_failed",  # rollback.yml refused or failed
    "shadow": "shadow_activated",  # shadow.yml: the model runs shadow-only
    "shadow_failed": "shadow_failed",  # shadow.yml: restored after a failed change
    "promotion": "promotion_step",  # promote.yml: one step up the ladder
    "promotion_failed": "promotion_failed",  # promote.yml: restored after a failed change
    "monitoring_started": "monitoring_started",  # model-safety monitor
    "violation": "violation",  # model-safety monitor: one rule, per host
    "monitoring_completed": "monitoring_completed",  # model-safety monitor: safe or ended
}
EVENTS = tuple(ACTIONS)
# A reason explains a failure or a rollback; the monitor's "ended" reason is no trigger.
_TRIGGERED = frozenset(
    {event for event in ACTIONS if event.endswith("_failed")} | {"rollback_executed"}
)
FILE_MODE = 0o640
DIR_MODE = 0o750
# Enough of a broken line to recognise it in a problem report; shorter in an error message.
_EXCERPT = 120
_SHORT_EXCERPT = 40

_TS_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")
_MODE_RE = re.compile(r"0?[0-7]{3}")


class ActivationLogError(Exception):
    """A record that cannot be logged, or a log that cannot be written."""


def utc_timestamp(now: datetime | None = None) -> str:
    """``now`` (default: the current time) as ``2026-01-10T12:00:00.123Z``."""
    moment = datetime.now(UTC) if now is None else now
    if moment.tzinfo is None:
        raise ActivationLogError("now must be timezone-aware")
    return iso_ms(moment)


def parse_mode(mode: object) -> int:
    """The permission bits of ``mode``: an octal string (``"0640"``, ``"640"``) or an int
    (YAML's ``0640`` already read as octal). Writable by others is refused: anyone could
    then forge the record of an activation."""
    if isinstance(mode, str) and _MODE_RE.fullmatch(mode):
        bits = int(mode, 8)
    elif isinstance(mode, int) and not isinstance(mode, bool) and 0 <= mode <= 0o777:
        bits = mode
    else:
        raise ActivationLogError(f"mode must be octal permission bits such as '0640': {mode!r}")
    if bits & 0o002:
        raise ActivationLogError(f"mode {bits:04o} would let anyone write the activation log")
    return bits


def check_path(path: object) -> str:
    """``path`` if it is a normalised absolute path without '..' (as the lease and the backups
    require), else raise."""
    problem = absolute_path_problem(path)
    if problem is not None:
        raise ActivationLogError(f"the log path {path!r} {problem}")
    return path


def resolve_group(group: str | None) -> int:
    """The gid of ``group`` (a name or a number), -1 (unchanged) when None."""
    if group is None:
        return -1
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        if group.isdigit():
            return int(group)
        raise ActivationLogError(f"no such group: {group!r}") from None


def _is_utc_time(value: object) -> bool:
    if not isinstance(value, str) or not _TS_RE.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value[:-1] + "+00:00")
    except ValueError:
        return False
    return True


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _number(value: object) -> float | None:
    """A finite number; Jinja may hand a weight over as its text (``"0.1"``)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):  # not a number, or an int beyond a float
        return None
    return number if math.isfinite(number) else None


def _count(value: object) -> int | None:
    """A count of at least 0, also from its text (``"342"``) or a whole float (``342.0``)."""
    number = _number(value)
    if number is None or number < 0 or number != int(number):
        return None
    return int(number)


def _gate_events(gate: object) -> int | None:
    return _count(gate.get("event_count")) if isinstance(gate, Mapping) else None


def _violation_texts(text: object) -> list[str] | None:
    return [text] if _text(text) else None


def _hours(seconds: object) -> float | None:
    number = _number(seconds)
    return None if number is None or number < 0 else round(number / 3600, 6)


# The seed's keys derived from the caller's: (seed key, the caller's key, how it is read, the
# events it applies to, None for all). A value that cannot be read leaves the key out.
_DERIVED = (
    ("canary_model", "model", _text, None),
    ("canary_weight", "weight", _number, None),
    ("cutover_ts", "cutover", _text, None),
    ("quality_gate_events", "gate", _gate_events, None),
    ("rollback_cmd", "rollback_command", _text, None),
    ("trigger", "reason", _text, _TRIGGERED),
    ("violations", "text", _violation_texts, frozenset({"violation"})),
    ("checks_performed", "checks", _count, frozenset({"monitoring_completed"})),
    ("duration_hours", "duration_s", _hours, frozenset({"monitoring_completed"})),
)


def seed_keys(record: Mapping[str, Any]) -> dict[str, Any]:
    """The seed's keys of ``record`` (a valid record with its ``ts``) that it does not set
    itself: ``timestamp``, ``action`` and those of _DERIVED that it has the data for."""
    event = record["event"]
    derived: dict[str, Any] = {"timestamp": record["ts"], "action": ACTIONS[event]}
    for key, source, read, events in _DERIVED:
        if source in record and (events is None or event in events):
            value = read(record[source])
            if value is not None:
                derived[key] = value
    return {key: value for key, value in derived.items() if key not in record}


def format_line(record: Mapping[str, Any], now: datetime | None = None) -> tuple[dict, str]:
    """Validate ``record`` and return it (with ``ts`` first when it was added, and the seed's
    keys after the caller's) and its line."""
    if not isinstance(record, Mapping):
        raise ActivationLogError(f"a record must be a mapping, not {type(record).__name__}")
    bad_keys = [key for key in record if not isinstance(key, str)]
    if bad_keys:
        raise ActivationLogError(f"record keys must be strings: {bad_keys!r}")
    event = record.get("event")
    if event not in EVENTS:
        raise ActivationLogError(f"event must be one of {', '.join(EVENTS)}: {event!r}")
    complete = dict(record) if "ts" in record else {"ts": utc_timestamp(now), **record}
    if not _is_utc_time(complete["ts"]):
        raise ActivationLogError(
            f"ts must be a UTC time like 2026-01-10T12:00:00.123Z: {complete['ts']!r}"
        )
    complete.update(seed_keys(complete))
    try:
        text = json.dumps(
            complete, sort_keys=False, separators=(",", ":"), ensure_ascii=True, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise ActivationLogError(f"record is not loggable as JSON: {exc}") from None
    return complete, text + "\n"


def _open_for_append(path: str, mode: int, gid: int) -> tuple[int, bool]:
    """An O_APPEND descriptor of ``path`` (readable, for the last byte) and whether it was
    created; a new file gets ``mode`` (umask aside) and ``gid``."""
    flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
    while True:
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            try:
                return os.open(path, flags), False
            except FileNotFoundError:
                continue  # removed between the two opens (log rotation): create it
        try:
            os.fchmod(fd, mode)
            if gid != -1:
                os.fchown(fd, -1, gid)
        except OSError:
            os.close(fd)
            raise
        return fd, True


def _describe(exc: OSError) -> str:
    """``ENOSPC (No space left on device)``: the errno's name for the operator's search."""
    name = errno.errorcode.get(exc.errno or 0)
    return f"{name} ({exc.strerror})" if name else str(exc)


def _write_or_take_back(fd: int, data: bytes, size: int, path: str) -> None:
    """Append ``data`` to the locked log ``fd`` (``size`` bytes) and fsync it. When that
    fails, truncate the file back to ``size`` (what was written part-way would be a torn line,
    and a record whose append failed must not stay: the caller acts on the failure) and raise
    ActivationLogError. The flock held keeps other appenders out until then."""
    try:
        write_all(fd, data)
        os.fsync(fd)
    except OSError as exc:
        failure = f"cannot append to {path}: {_describe(exc)}"
        try:
            if os.fstat(fd).st_size != size:
                os.ftruncate(fd, size)
                os.fsync(fd)
        except OSError as undo:
            raise ActivationLogError(
                f"{failure}; the part written could not be truncated away ({_describe(undo)}): "
                "the log may end in a torn line, which last_record refuses until the next "
                "append ends it"
            ) from None
        raise ActivationLogError(
            f"{failure}; nothing was appended (the log is back to its {size} bytes)"
        ) from None


def append_record(
    path: str,
    record: Mapping[str, Any],
    *,
    mode: object = FILE_MODE,
    group: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Append ``record`` as one line; return ``{"record", "line", "created", "repaired"}``
    (``repaired``: a torn last line was ended first)."""
    check_path(path)
    complete, line = format_line(record, now)
    bits = parse_mode(mode)
    gid = resolve_group(group)
    try:
        directory = os.path.dirname(path) or "."
        ensure_directory(directory, DIR_MODE)
        fd, created = _open_for_append(path, bits, gid)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            repaired = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
            data = (b"\n" if repaired else b"") + line.encode("ascii")
            _write_or_take_back(fd, data, size, path)
        finally:
            os.close(fd)
        if created:
            fsync_directory(directory)
    except OSError as exc:
        raise ActivationLogError(f"cannot append to {path}: {exc}") from None
    return {"record": complete, "line": line.rstrip("\n"), "created": created, "repaired": repaired}


class _Line(NamedTuple):
    """One line of the log: its number (from 1), the offset of its first byte, its bytes
    (without the newline) and whether it is torn (the bytes after the last newline)."""

    number: int
    offset: int
    raw: bytes
    torn: bool


def _read_lines(path: str) -> list[_Line]:
    """The lines of the log (none when it is missing), read under a shared flock: appenders
    hold the exclusive one while they write, so no line is seen half-written."""
    try:
        with open(path, "rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH)
            content = handle.read()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ActivationLogError(f"cannot read {path}: {exc}") from None
    lines, offset = [], 0
    for number, raw in enumerate(content.split(b"\n"), start=1):
        lines.append(_Line(number, offset, raw, torn=False))
        offset += len(raw) + 1
    after_last_newline = lines.pop()  # normally empty
    if after_last_newline.raw:
        lines.append(after_last_newline._replace(torn=True))
    return lines


def _decode(raw: bytes) -> dict[str, Any]:
    """The record of one line; ValueError when it is not a JSON object."""
    record = json.loads(raw.decode("utf-8"))
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    return record


def read_records(path: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Every record of the log, oldest first, and the problems: lines that are not a JSON
    object, each named by its line number (a torn last line among them). A missing log has
    no records and no problems."""
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    for line in _read_lines(path):
        try:
            records.append(_decode(line.raw))
        except ValueError as exc:
            kind = "torn last line (no newline at the end)" if line.torn else "unreadable"
            excerpt = line.raw[:_EXCERPT].decode("utf-8", "replace")
            problems.append(f"line {line.number}: {kind}: {exc}: {excerpt!r}")
    return records, problems


def _refuse_a_bad_last_line(path: str, last: _Line) -> None:
    """Raise ActivationLogError when the log's last line is not a whole record: it may be the
    newest one (an append cut short by a crash), so no older record may stand in for it."""
    if last.torn:
        kind, reason = "a torn line", "no newline at its end"
    else:
        try:
            _decode(last.raw)
        except ValueError as exc:
            kind, reason = "an unreadable line", str(exc)
        else:
            return
    excerpt = last.raw[:_SHORT_EXCERPT].decode("utf-8", "replace")
    raise ActivationLogError(
        f"{path} ends in {kind} (line {last.number} at byte {last.offset}, "
        f"{len(last.raw)} bytes, {reason}; starts {excerpt!r}): the newest record cannot be "
        "told, so none is returned"
    )


def last_record(
    path: str, event: str | Iterable[str] | None = None, model: str | None = None
) -> dict[str, Any] | None:
    """The newest record of ``event`` (one event or several) for ``model`` (None: any), or
    None. Unreadable lines before the last are skipped (``read_records`` lists them); a torn
    or unreadable last line raises ActivationLogError."""
    events = {event} if isinstance(event, str) else None if event is None else set(event)
    unknown = sorted(events - set(EVENTS)) if events else []
    if unknown:
        raise ActivationLogError(f"unknown event(s): {', '.join(unknown)}")
    lines = _read_lines(path)
    if lines:
        _refuse_a_bad_last_line(path, lines[-1])
    for line in reversed(lines):
        try:
            record = _decode(line.raw)
        except ValueError:
            continue
        if (events is None or record.get("event") in events) and (
            model is None or record.get("model") == model
        ):
            return record
    return None
