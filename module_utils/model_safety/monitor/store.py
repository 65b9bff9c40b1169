"""What the canary monitor keeps and tells on the control node: one monitor per host (a lock
held for the process's life), the persisted state of each host's window, the per-check log
(JSON lines, rotated), the Prometheus textfile and the webhook.

Controller side only (the monitor process); standard library only.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import http.client
import json
import logging
import logging.handlers
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from ..fileio import ensure_directory, write_atomic
from ..utctime import iso_ms
from .alertmanager import ALERTMANAGER_FORMAT, MONITOR_FORMAT, alertmanager_payload, webhook_format
from .settings import POOL

STATE_DIR_MODE = 0o700
STATE_FILE_MODE = 0o600
TEXTFILE_MODE = 0o644
CHECK_LOG_BYTES = 10 * 1024 * 1024
CHECK_LOG_BACKUPS = 5
_HOST_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")
# What http.client sends as it is: printable ASCII without spaces. Any other character fails
# each delivery with an error that quotes the URL's path, which may carry a token.
_WEBHOOK_TEXT_RE = re.compile(r"[!-~]*")


class MonitorIOError(Exception):
    """A lock held by another monitor, or a state file that cannot be used."""


def _host_name(host: str) -> str:
    if not isinstance(host, str) or not _HOST_RE.fullmatch(host):
        raise MonitorIOError(f"not a usable inventory host name: {host!r}")
    return host


class HostLocks:
    """One monitor per host: an exclusive ``flock`` of ``<state_dir>/<host>.lock`` held while
    the process lives (the kernel drops it when the process dies, so a killed monitor never
    leaves a stale lock and its successor resumes at once). The file names the holder."""

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        self._fds: dict[str, int] = {}

    def acquire(self, hosts: list[str], model: str) -> None:
        """Lock every host or none; MonitorIOError names the monitor holding one."""
        ensure_directory(self.state_dir, STATE_DIR_MODE)
        try:
            for host in hosts:
                self._acquire(_host_name(host), model)
        except BaseException:
            self.release()
            raise

    def _acquire(self, host: str, model: str) -> None:
        path = os.path.join(self.state_dir, f"{host}.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, STATE_FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "unknown"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise MonitorIOError(
                    f"another monitor already watches {host} ({holder}); refusing to run a "
                    "second one"
                ) from None
            raise MonitorIOError(f"cannot lock {path}: {exc}") from None
        holder = json.dumps({"pid": os.getpid(), "model": model, "since": iso_ms(time.time())})
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode() + b"\n", 0)
        self._fds[host] = fd

    def release(self) -> None:
        """Drop every lock this process holds."""
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()


class StateStore:
    """Each host's monitoring state as ``<state_dir>/<host>.<model>.json`` (0600), replaced
    atomically after every check, so a restarted monitor resumes where the last one stopped."""

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir

    def path(self, host: str, model: str) -> str:
        """Where ``host``'s state for ``model`` lives (``POOL``: the pooled evidence of
        the model's hosts; no host name starts with ``_``)."""
        name = host if host == POOL else _host_name(host)
        return os.path.join(self.state_dir, f"{name}.{model}.json")

    def load(self, host: str, model: str) -> dict[str, Any] | None:
        """The saved state, or None when there is none; an unreadable one raises (a window
        is never restarted silently)."""
        path = self.path(host, model)
        try:
            with open(path, "rb") as handle:
                state = json.loads(handle.read().decode("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise MonitorIOError(
                f"cannot read the monitor state {path}: {exc}; remove it to start a new window"
            ) from None
        if not isinstance(state, dict) or state.get("host") != host or state.get("model") != model:
            raise MonitorIOError(f"{path} is not the monitor state of {host}/{model}")
        return state

    def save(self, state: Mapping[str, Any]) -> None:
        """Persist ``state`` whole or not at all."""
        ensure_directory(self.state_dir, STATE_DIR_MODE)
        data = json.dumps(state, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        write_atomic(self.path(state["host"], state["model"]), data, STATE_FILE_MODE)


def check_logger(path: str) -> logging.Logger:
    """A logger writing one JSON line per record to ``path``, rotated at 10 MB (5 kept)."""
    ensure_directory(os.path.dirname(path) or ".", 0o750)
    logger = logging.getLogger(f"model_safety.monitor.checks.{path}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not logger.handlers:
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=CHECK_LOG_BYTES, backupCount=CHECK_LOG_BACKUPS, encoding="utf-8"
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    return logger


def stream_checks(logger: logging.Logger, stream: Any) -> None:
    """Also write every record of the check ``logger`` to ``stream`` (``monitor --json``), the
    same JSON line as in the file, flushed at once."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)


def log_check(logger: logging.Logger, record: Mapping[str, Any]) -> None:
    """Append ``record`` (with ``ts``) as one JSON line."""
    logger.info(json.dumps({"ts": iso_ms(time.time()), **record}, sort_keys=True, default=str))


def write_textfile(directory: str, model: str, text: str) -> str:
    """Publish ``text`` as ``<directory>/qsc_monitor_<model>.prom`` atomically (node_exporter
    reads whole files only, and never a half-written one)."""
    path = os.path.join(directory, f"qsc_monitor_{model}.prom")
    write_atomic(path, text.encode(), TEXTFILE_MODE)
    return path


def redact_webhook(url: str) -> str:
    """The URL without credentials, path or query (they may carry a token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


class Webhook:
    """POSTs JSON notifications to a URL on background threads: a dead or slow endpoint never
    delays the caller (the rollback); each notification is tried ``retries + 1`` times with
    ``timeout`` seconds each and a growing pause. ``report`` gets every outcome. The payload is
    the monitor's own notification, or with ``payload_format`` "alertmanager" Alertmanager's
    webhook receiver format."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        retries: int = 2,
        backoff: float = 1.0,
        report: Callable[[dict[str, Any]], None] | None = None,
        payload_format: str = MONITOR_FORMAT,
    ) -> None:
        try:
            self.payload_format = webhook_format(payload_format)
        except ValueError as exc:
            raise MonitorIOError(str(exc)) from None
        if not isinstance(url, str) or not _WEBHOOK_TEXT_RE.fullmatch(url):
            raise MonitorIOError(
                "webhook URL must be printable ASCII without spaces (percent-encode the rest); "
                "not shown, it may carry a token"
            )
        parts = urlsplit(url)
        try:
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            port_ok = False
        if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
            shown = redact_webhook(url)
            raise MonitorIOError(f"webhook URL must be http(s)://host/..., got {shown}")
        self.url = url
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.report = report or (lambda _outcome: None)
        self._threads: list[threading.Thread] = []

    def notify(self, payload: Mapping[str, Any]) -> None:
        """Send ``payload`` in the background and return at once."""
        if self.payload_format == ALERTMANAGER_FORMAT:
            body = json.dumps(alertmanager_payload(payload, time.time()), default=str).encode()
        else:
            body = json.dumps(payload, sort_keys=True, default=str).encode()
        thread = threading.Thread(target=self._deliver, args=(body, payload.get("event")))
        thread.daemon = True
        thread.start()
        self._threads.append(thread)

    def _deliver(self, body: bytes, event: Any) -> None:
        error = ""
        for attempt in range(1, self.retries + 2):
            request = urllib.request.Request(
                self.url,
                data=body,
                method="POST",
                headers={"Content-Type": "application/json", "User-Agent": "model-safety"},
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    self.report(
                        {
                            "webhook": "delivered",
                            "event": event,
                            "attempt": attempt,
                            "status": response.status,
                        }
                    )
                    return
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
                error = str(getattr(exc, "reason", exc))
            if attempt <= self.retries:
                time.sleep(self.backoff * attempt)
        self.report(
            {"webhook": "failed", "event": event, "attempts": self.retries + 1, "error": error}
        )

    def drain(self, wait: float) -> None:
        """Give the notifications still in flight up to ``wait`` seconds in all."""
        deadline = time.monotonic() + wait
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = [thread for thread in self._threads if thread.is_alive()]
