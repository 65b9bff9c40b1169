"""The module tests' fixtures, from the one helper they share (tests/module_harness.py)."""

from tests.module_harness import fake_systemd, git_checkout, redis_client, stream

__all__ = ["fake_systemd", "git_checkout", "redis_client", "stream"]
