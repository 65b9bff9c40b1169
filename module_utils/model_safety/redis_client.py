"""The one way this project connects to Redis: :func:`connect` builds a redis-py client from
a URL (argument, ``$MODEL_SAFETY_REDIS_URL`` or the local default), a password from the URL or
the environment, TLS with ``rediss://``, and timeouts. The password is never printed:
:func:`redact_url` is what logs, reports and error messages show. Needs redis-py (4.3 or
later), not numpy.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import redis

from .redaction import PASSWORD_ENVS, REDACTED, is_secret_name
from .redis_url import check_db_path
from .site_defaults import DEFAULT_REDIS_URL

DEFAULT_TIMEOUT_S = 10.0
URL_ENV = "MODEL_SAFETY_REDIS_URL"
_SCHEMES = ("redis", "rediss", "unix")


class StreamError(Exception):
    """Redis could not give us the window: unreachable, timed out, no such stream, ..."""


def redact_url(url: str) -> str:
    """``url`` with its password (userinfo or query) replaced by ``***``; safe to print."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparsable redis url>"
    user = quote(unquote(parts.username), safe="") if parts.username else ""
    netloc = f"{user}@" if user else ""
    if parts.password is not None:
        netloc = f"{user}:{REDACTED}@"
    netloc += f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    text = f"{parts.scheme}://{netloc}{parts.path}"
    if parts.query:
        text += "?" + "&".join(
            f"{key}={REDACTED if is_secret_name(key) else quote(value, safe='/')}"
            for key, value in parse_qsl(parts.query, keep_blank_values=True)
        )
    return text


def url_secrets(url: str, env: Mapping[str, str]) -> list[str]:
    """Every secret that might appear in an error message: passwords in the URL and env."""
    secrets: list[str] = []
    try:
        parts = urlsplit(url)
        if parts.password:
            secrets += [parts.password, unquote(parts.password)]
        secrets += [value for key, value in parse_qsl(parts.query) if is_secret_name(key)]
    except ValueError:
        pass
    secrets += [env[name] for name in PASSWORD_ENVS if env.get(name)]
    # Longest first, so a secret that contains another is scrubbed whole.
    return sorted({s for s in secrets if s}, key=len, reverse=True)


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every secret replaced by ``***``."""
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def resolve_url(url: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The URL to use: ``url``, else ``$MODEL_SAFETY_REDIS_URL``, else the local default."""
    env = os.environ if env is None else env
    return url or env.get(URL_ENV) or DEFAULT_REDIS_URL


def connect(
    url: str | None = None,
    env: Mapping[str, str] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    connect_timeout: float | None = None,
) -> redis.Redis:
    """A redis-py client for ``url`` (see :func:`resolve_url`); nothing is sent yet.

    The password comes from the URL (``redis://:PASSWORD@host`` or ``?password=``), else from
    ``$MODEL_SAFETY_REDIS_PASSWORD``, else ``$REDISCLI_AUTH``. ``rediss://`` means TLS
    (``?ssl_ca_certs=/path&ssl_cert_reqs=required`` as redis-py reads them). ``timeout``
    bounds every reply and, unless ``connect_timeout`` is given, the connect. Raises
    :class:`StreamError` for a URL that is not ``redis://``, ``rediss://`` or ``unix://`` or
    whose path is not a db number (``/abc``), or a non-positive timeout.
    """
    env = os.environ if env is None else env
    raw = resolve_url(url, env)
    connect_timeout = timeout if connect_timeout is None else connect_timeout
    for value in (timeout, connect_timeout):
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise StreamError(f"timeout must be a positive number of seconds, not {value!r}")
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError for a bad port
        check_db_path(raw)
    except ValueError as exc:
        raise StreamError(f"not a Redis URL: {redact_url(raw)} ({exc})") from None
    if parts.scheme not in _SCHEMES:
        raise StreamError(
            f"not a Redis URL (redis://, rediss:// or unix://): {redact_url(raw)}"
        ) from None
    kwargs: dict[str, Any] = {"socket_timeout": timeout}
    if parts.scheme != "unix":  # redis-py 4.3's unix connections take no connect timeout
        kwargs["socket_connect_timeout"] = connect_timeout
    query_keys = {key for key, _value in parse_qsl(parts.query)}
    if parts.password is None and "password" not in query_keys:
        password = next((env[name] for name in PASSWORD_ENVS if env.get(name)), None)
        if password:
            kwargs["password"] = password
    try:
        return redis.Redis.from_url(raw, **kwargs)
    except (ValueError, TypeError, redis.RedisError) as exc:
        message = scrub(str(exc), url_secrets(raw, env))
        raise StreamError(f"bad Redis URL {redact_url(raw)}: {message}") from None


def describe_client(client: Any) -> str:
    """``redis://host:port/db`` (or ``unix://path``) of a client, without credentials."""
    try:
        pool = client.connection_pool
        kwargs = pool.connection_kwargs
    except AttributeError:
        return "redis"
    db = kwargs.get("db", 0)
    if kwargs.get("path"):
        return f"unix://{kwargs['path']}?db={db}"
    tls = "SSL" in getattr(getattr(pool, "connection_class", None), "__name__", "")
    host, port = kwargs.get("host", "localhost"), kwargs.get("port", 6379)
    return f"{'rediss' if tls else 'redis'}://{host}:{port}/{db}"
