"""Documentation shared by the analytics modules that read a window of the engine's telemetry
(quality_gate, scoreboard, feature_sanity, shadow_report, promotion_check, with
model_safety_redis for redis_url and stream); each module documents the rest."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  count:
    description:
      - The window is the newest O(count) events (after O(after), when given).
      - Default 500 without O(after), no limit with it (every event after the cutover).
    type: int
requirements:
  - python3-numpy (1.24 or later) and python3-redis (redis-py 4.3 or later) on the target
"""
