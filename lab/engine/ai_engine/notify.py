"""Minimal sd_notify(3) over the stdlib: one datagram to $NOTIFY_SOCKET."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


def notify_address(env: Mapping[str, str]) -> str | None:
    """The socket address from NOTIFY_SOCKET ('@name' is the abstract namespace), or None."""
    address = env.get("NOTIFY_SOCKET", "")
    if not address:
        return None
    if address.startswith("@"):
        return "\0" + address[1:]
    return address


def sd_notify(message: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``message`` (e.g. 'READY=1') to systemd; False when unset. Raises OSError on failure."""
    address = notify_address(os.environ if env is None else env)
    if address is None:
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode("utf-8"))
    return True
