"""Documentation of the options of the modules that read the engine's telemetry.

DOCUMENTATION (C(model_safety_redis)): where Redis is (password masked, or taken from the
environment) and which stream. WINDOW (C(model_safety_redis.window)): what the analytics modules
(quality_gate, scoreboard, feature_sanity, shadow_report, promotion_check, canary_compare) add,
the window and the reports; THRESHOLDS (C(model_safety_redis.thresholds)): the checking of the
thresholds, for the modules that take O(thresholds) (each documents which thresholds matter to
it, and may document O(after) more closely). The window's options follow the arguments of
model_safety.judgement.run and the argument spec ansible_support.COMMON_ARGUMENT_SPEC. Each
text is one literal string: ansible-test's yamllint sanity test reads only those.
"""


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

    WINDOW = r"""
options:
  count:
    description:
      - The window is the newest O(count) events (after O(after), when given).
      - Default 500 without O(after), no limit with it (every event after the cutover).
    type: int
  after:
    description:
      - Only events after this cutover count, an ISO-8601 time (C(Z) or an offset) or a stream
        id C(<ms>-<seq>) (exclusive); then every later event is read and O(count) does not
        apply.
    type: str
  report_dir:
    description:
      - Directory on the target to write the reports to, a Markdown report and the JSON result
        named after the check and the UTC time (their paths are in RV(reports)), mode 0640,
        written atomically. A missing directory is created, mode 0750 whatever the umask.
      - Null writes no file. Check mode never writes one.
    type: path
  report_only:
    description:
      - Only report, never fail the task because of what was found (the full result is
        returned either way).
    type: bool
    default: false
requirements:
  - python3-numpy (1.24 or later) and python3-redis (redis-py 4.3 or later) on the target
notes:
  - Writing the report files is not reported as a change (C(changed) stays false), the engine,
    its configuration and its data are never touched; the written paths are in RV(reports).
"""

    # Notes only; a fragment needs options (Ansible refuses one without), hence the empty map.
    THRESHOLDS = r"""
options: {}
notes:
  - The overrides in O(thresholds) are validated by C(Thresholds.with_overrides)
    (C(model_safety.judgement.thresholds)); an unknown name or a value that is not a finite,
    non-negative number (an integer for integer thresholds, at most 1 for shares) fails the
    task.
"""
