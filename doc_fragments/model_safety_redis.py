"""Documentation of the options every module that reads the engine's telemetry takes: where
Redis is (password masked, or taken from the environment) and which stream."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  redis_url:
    description:
      - URL of the Redis server holding the telemetry stream (C(redis://), C(rediss://) for TLS
        or C(unix://)). Its path, if any, is the db number (C(/0)); any other path is refused.
      - A password in the URL is masked in all output. Without one, the password is taken from
        C(MODEL_SAFETY_REDIS_PASSWORD) or C(REDISCLI_AUTH) in the module's environment.
    type: str
    default: redis://127.0.0.1:6379/0
  stream:
    description: The Redis stream the engine publishes its events to.
    type: str
    default: quantum:stream:trade.intent
"""
