"""Documentation shared by the analytics modules that read a window of the engine's telemetry
(quality_gate, scoreboard, feature_sanity, shadow_report); each module documents the rest."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  count:
    description:
      - The window is the newest O(count) events (after O(after), when given).
      - Default 500 without O(after), no limit with it (every event after the cutover).
    type: int
  redis_url:
    description:
      - URL of the Redis server holding the telemetry stream (C(redis://) or C(rediss://) for
        TLS). Its path, if any, is the db number (C(/0)); any other path is refused.
      - A password in the URL is masked in all output. Without one, the password is taken
        from C(REDISCLI_AUTH) or C(MODEL_SAFETY_REDIS_PASSWORD) in the module's environment.
    type: str
    default: redis://127.0.0.1:6379/0
  stream:
    description: The Redis stream the engine publishes its events to.
    type: str
    default: quantum:stream:trade.intent
requirements:
  - python3-numpy (1.24 or later) and python3-redis (redis-py 4.3 or later) on the target
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
"""
