"""What a Redis URL must be before any client is made from it. Standard library only: the
modules check it before they need redis or numpy.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

# redis-py reads the db from the path of a redis:// or rediss:// URL with int() on the path
# without its slashes and silently ignores a path that is no number: /abc would be db 0 and
# /1/2 db 12, the wrong data without an error.
_DB_PATH_RE = re.compile(r"/?|/[0-9]+")


def check_db_path(url: str) -> None:
    """Raise ValueError unless the path of a ``redis://`` or ``rediss://`` URL is empty or a
    db number (``/0``); ``unix://`` paths are sockets (their db is ``?db=``)."""
    parts = urlsplit(url)
    if parts.scheme in ("redis", "rediss") and not _DB_PATH_RE.fullmatch(unquote(parts.path)):
        raise ValueError(f"the path must be a db number such as /0, not {parts.path!r}")
