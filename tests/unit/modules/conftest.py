"""The module tests' fixtures, from the one helper they share (tests/module_harness.py); the
Redis ones (redis_server, redis_client, redis_stream) come from tests/redis_server.py."""

from tests.module_harness import fake_systemd, git_checkout, telemetry

__all__ = ["fake_systemd", "git_checkout", "telemetry"]
