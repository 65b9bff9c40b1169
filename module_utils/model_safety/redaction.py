"""What counts as a secret, in one place for the Redis connector, the modules' masking and the
environment files. Standard library only: a module must mask secrets before it imports
anything that might be missing on the target.
"""

from __future__ import annotations

# The first of these that is set supplies the Redis password when the URL has none.
PASSWORD_ENVS = ("MODEL_SAFETY_REDIS_PASSWORD", "REDISCLI_AUTH")
# A name (env key, URL query key) holding one of these words holds a secret.
SECRET_WORDS = ("pass", "auth", "secret", "token", "key")
REDACTED = "***"


def is_secret_name(name: str) -> bool:
    """True when ``name`` says that its value is a secret (any case: ``REDIS_PASSWORD``,
    ``api_key``, ``AuthToken``)."""
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)
