"""The trading system's site defaults (DESIGN.md): where the engine runs, what it is called,
where it publishes and logs. One place for the code's defaults and the modules' options.
Standard library only.
"""

from __future__ import annotations

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_STREAM = "quantum:stream:trade.intent"
DEFAULT_UNIT = "quantum-ai-engine.service"
DEFAULT_CHECKOUT = "/home/qt/quantum_trader"
DEFAULT_TRADE_LOG = "/opt/quantum/data/quantum_trader.db"
DEFAULT_TRADE_TABLE = "trade_intents"
DEFAULT_ENV_FILE = "/etc/quantum/ai-engine.env"
DEFAULT_DROPIN_DIR = "/etc/systemd/system/quantum-ai-engine.service.d"
DEFAULT_CANARY_DROPIN = "qsc_canary.conf"
# Models in the engine's order with their baseline weights (DESIGN.md; the inventory's
# model_safety_baseline_weights), as QSC_MODEL_WEIGHTS writes them.
DEFAULT_BASELINE_WEIGHTS = "xgb:0.25,lgbm:0.25,nhits:0.30,patchtst:0.20"
