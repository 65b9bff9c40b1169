"""Engine configuration: parse and validate the environment into a frozen EngineConfig.

Every value is validated; anything invalid raises ConfigError (the service then exits with
EX_CONFIG = 78). An empty value counts as unset. Nothing bad is silently replaced by a default.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar
from urllib.parse import urlsplit

from .models import HEALTHY_SCHEDULE, Schedule, parse_schedule

T = TypeVar("T")
N = TypeVar("N", int, float)

EX_CONFIG = 78

DEFAULT_MODELS_FILE = Path(__file__).resolve().parents[1] / "config" / "models.json"
DEFAULT_PATCHTST_MODEL_PATH = "/opt/quantum/models/patchtst.pth"
DEFAULT_RATE = 10.0
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_STREAM = "quantum:stream:trade.intent"
DEFAULT_STREAM_MAXLEN = 200_000
DEFAULT_DB = "/opt/quantum/data/quantum_trader.db"
DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT")
DEFAULT_SHADOW_LOG_INTERVAL = 10.0
FEATURE_MODES = ("healthy", "flatline", "nan", "shifted")
MAX_RATE = 100_000.0
MAX_PAYLOAD_PAD = 100_000
# SIM_LOG_SPAM's journal lines per minute and SIM_DISK_GROWTH's bytes per second, at most.
MAX_LOG_SPAM = 600_000.0
MAX_DISK_GROWTH = 100_000_000.0
WEIGHT_SUM_TOLERANCE = 1e-6
CANARY_WEIGHT_TOLERANCE = 1e-9

MODEL_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,20}$")
STREAM_RE = re.compile(r"^[A-Za-z0-9:._{}-]{1,200}$")
SHA_RE = re.compile(r"^[0-9a-fA-F]{7,40}$")
_NUMBER_RE = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")
_INT_RE = re.compile(r"^[0-9]+$")
_TRUE = ("1", "true", "yes")
_FALSE = ("0", "false", "no")

SIM_SWITCHES = (
    "SIM_FEATURES",
    "SIM_FAIL_START",
    "SIM_CRASH_AFTER",
    "SIM_SILENT",
    "SIM_SILENT_AFTER",
    "SIM_BUILD_OVERRIDE",
    "SIM_SHADOW_LEAK",
    "SIM_PAYLOAD_PAD",
    "SIM_LOG_SPAM",
    "SIM_DISK_GROWTH",
    "SIM_FAULTS_ONLY_WITH_CANARY",
)
_RESERVED_MODEL_NAMES = frozenset(s.removeprefix("SIM_").lower() for s in SIM_SWITCHES)

DISPLAY_NAMES = {"xgb": "XGB", "lgbm": "LGBM", "nhits": "NHiTS", "patchtst": "PatchTST"}


class ConfigError(ValueError):
    """Invalid engine configuration (the message names the variable and the problem)."""


@dataclass(frozen=True)
class EngineConfig:
    """Validated engine configuration. Fault fields hold the values in force (see faults_active)."""

    models: tuple[str, ...]
    baseline_weights: Mapping[str, float]
    weights: Mapping[str, float]
    shadow: frozenset[str]
    schedules: Mapping[str, Schedule]
    models_file: Path
    patchtst_model_path: Path
    canary_model: str | None
    canary_weight: float | None
    canary_conf_cap: float | None
    weights_overridden: bool
    rate: float
    redis_url: str
    stream: str
    stream_maxlen: int
    db_path: Path
    symbols: tuple[str, ...]
    seed: int
    shadow_log_interval: float
    features_mode: str
    fail_start: bool
    crash_after: float | None
    silent: bool
    silent_after: float | None
    build_override: str | None
    shadow_leak: bool
    payload_pad: int
    faults_only_with_canary: bool
    faults_active: bool
    log_spam: float = 0.0
    disk_growth: float = 0.0

    @property
    def voters(self) -> tuple[str, ...]:
        """Models that vote (every configured model that is not shadow-only), in model order."""
        return tuple(m for m in self.models if m not in self.shadow)


def display_name(model: str) -> str:
    """Human display name used in [SHADOW] lines (xgb -> XGB, nhits -> NHiTS, ...)."""
    return DISPLAY_NAMES.get(model, model.upper())


def format_pct(weight: float) -> str:
    """weight * 100 with at most 4 decimals, trailing zeros stripped: 0.28125 -> '28.125'."""
    return f"{weight * 100:.4f}".rstrip("0").rstrip(".")


def format_weight(weight: float) -> str:
    """A weight as a plain decimal without exponent or trailing zeros: 0.1 -> '0.1'."""
    return f"{weight:.10f}".rstrip("0").rstrip(".")


def format_weights(models: tuple[str, ...], weights: Mapping[str, float]) -> str:
    """The weights as ``m:w,...`` in model order (the QSC_MODEL_WEIGHTS syntax)."""
    return ",".join(f"{m}:{format_weight(weights[m])}" for m in models)


def _get(env: Mapping[str, str], key: str) -> str | None:
    value = env.get(key)
    if value is None or not value.strip():
        return None
    return value.strip()


def parse_bool(key: str, value: str) -> bool:
    """true/false, 1/0 or yes/no (any case)."""
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{key} must be true/false, 1/0 or yes/no, got {value!r}")


def parse_float(key: str, value: str) -> float:
    """A finite decimal number (no nan/inf, no underscores)."""
    if not _NUMBER_RE.match(value):
        raise ConfigError(f"{key} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(f"{key} must be finite, got {value!r}")
    return number


def parse_int(key: str, value: str) -> int:
    """A non-negative decimal integer."""
    if not _INT_RE.match(value):
        raise ConfigError(f"{key} must be a non-negative integer, got {value!r}")
    return int(value)


def _absolute_path(key: str, value: str) -> Path:
    path = Path(value)
    if not path.is_absolute():
        raise ConfigError(f"{key} must be an absolute path, got {value!r}")
    return path


def _check_weight(where: str, model: str, weight: float) -> None:
    if not (math.isfinite(weight) and 0.0 < weight <= 1.0):
        raise ConfigError(f"{where}: weight of {model} must be finite and in (0, 1], got {weight}")


def _check_sum(where: str, weights: Mapping[str, float]) -> None:
    total = math.fsum(weights.values())
    if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
        raise ConfigError(f"{where}: weights must sum to 1 (within 1e-6), got {total:.10g}")


def _reject_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [k for k, _ in pairs]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ConfigError(f"duplicate keys {duplicates}")
    return dict(pairs)


def load_baseline(path: Path) -> dict[str, float]:
    """Read ``{"models": {name: weight, ...}}``; the key order is the model order."""
    where = f"models file {path}"
    try:
        document = json.loads(
            path.read_text(encoding="utf-8"), object_pairs_hook=_reject_duplicates
        )
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"{where}: invalid JSON: {exc}") from exc
    models = document.get("models") if isinstance(document, dict) else None
    if not isinstance(models, dict) or not models:
        raise ConfigError(f'{where}: expected {{"models": {{"<name>": <weight>, ...}}}}')
    baseline: dict[str, float] = {}
    for name, weight in models.items():
        if not MODEL_NAME_RE.match(name):
            raise ConfigError(f"{where}: invalid model name {name!r} (^[a-z][a-z0-9_]{{0,31}}$)")
        if name in _RESERVED_MODEL_NAMES:
            raise ConfigError(f"{where}: model name {name!r} clashes with SIM_{name.upper()}")
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise ConfigError(f"{where}: weight of {name} must be a number, got {weight!r}")
        _check_weight(where, name, float(weight))
        baseline[name] = float(weight)
    _check_sum(where, baseline)
    return baseline


def parse_model_weights(value: str, models: tuple[str, ...]) -> dict[str, float]:
    """Parse QSC_MODEL_WEIGHTS (``m:w,...``): every model exactly once, (0, 1], sum 1."""
    where = "QSC_MODEL_WEIGHTS"
    parsed: dict[str, float] = {}
    for item in value.split(","):
        name, sep, raw = (part.strip() for part in item.partition(":"))
        if not sep or not name or not raw:
            raise ConfigError(f"{where}: expected 'model:weight,...', got item {item.strip()!r}")
        if name not in models:
            raise ConfigError(f"{where}: unknown model {name!r} (configured: {', '.join(models)})")
        if name in parsed:
            raise ConfigError(f"{where}: model {name} named more than once")
        weight = parse_float(f"{where} ({name})", raw)
        _check_weight(where, name, weight)
        parsed[name] = weight
    missing = [m for m in models if m not in parsed]
    if missing:
        raise ConfigError(f"{where}: missing models {', '.join(missing)}")
    _check_sum(where, parsed)
    return {m: parsed[m] for m in models}


def parse_symbols(value: str) -> tuple[str, ...]:
    """Comma-separated, distinct symbols matching ^[A-Z0-9]{2,20}$."""
    symbols = tuple(s.strip() for s in value.split(","))
    for symbol in symbols:
        if not SYMBOL_RE.match(symbol):
            raise ConfigError(f"ENGINE_SYMBOLS: invalid symbol {symbol!r} (^[A-Z0-9]{{2,20}}$)")
    if len(set(symbols)) != len(symbols):
        raise ConfigError(f"ENGINE_SYMBOLS: duplicate symbols in {value!r}")
    return symbols


def validate_redis_url(value: str) -> str:
    """Accept redis://host[:port][/db], rediss://... and unix:///path URLs."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"REDIS_URL is not a valid URL: {exc}") from exc
    if parts.scheme == "unix":
        if not parts.path.startswith("/"):
            raise ConfigError("REDIS_URL unix:// needs an absolute socket path")
        return value
    if parts.scheme not in ("redis", "rediss"):
        raise ConfigError(f"REDIS_URL scheme must be redis, rediss or unix, got {parts.scheme!r}")
    if not parts.hostname:
        raise ConfigError("REDIS_URL needs a host")
    if port == 0:
        raise ConfigError("REDIS_URL port must be 1-65535")
    db = parts.path.lstrip("/")
    if db and not _INT_RE.match(db):
        raise ConfigError(f"REDIS_URL database must be an integer, got {db!r}")
    return value


def _model_switches(env: Mapping[str, str], models: tuple[str, ...]) -> None:
    """Reject SIM_* and *_SHADOW_ONLY variables that name no configured model (typos)."""
    known_sim = set(SIM_SWITCHES) | {f"SIM_{m.upper()}" for m in models}
    known_shadow = {f"{m.upper()}_SHADOW_ONLY" for m in models}
    for key in sorted(env):
        if key.startswith("SIM_") and key not in known_sim:
            raise ConfigError(f"unknown simulator variable {key} (models: {', '.join(models)})")
        if key.endswith("_SHADOW_ONLY") and key not in known_shadow:
            raise ConfigError(f"{key} names no configured model (models: {', '.join(models)})")


def _optional(env: Mapping[str, str], key: str, parse: Callable[[str, str], T]) -> T | None:
    value = _get(env, key)
    return None if value is None else parse(key, value)


def _positive(key: str, value: str) -> float:
    number = parse_float(key, value)
    if number <= 0:
        raise ConfigError(f"{key} must be > 0, got {value!r}")
    return number


def _at_most(limit: float, key: str, value: str, number: N) -> N:
    """``number``, read from ``value``, unless it is over ``limit``."""
    if number > limit:
        raise ConfigError(f"{key} must be <= {limit:g}, got {value!r}")
    return number


def _rate(key: str, value: str) -> float:
    return _at_most(MAX_RATE, key, value, _positive(key, value))


def _non_negative(key: str, value: str) -> float:
    number = parse_float(key, value)
    if number < 0:
        raise ConfigError(f"{key} must be >= 0, got {value!r}")
    return number


def _build_sha(key: str, value: str) -> str:
    if not SHA_RE.match(value):
        raise ConfigError(f"{key} must be 7-40 hex characters, got {value!r}")
    return value


def _payload_pad(key: str, value: str) -> int:
    return _at_most(MAX_PAYLOAD_PAD, key, value, parse_int(key, value))


def _log_spam(key: str, value: str) -> float:
    return _at_most(MAX_LOG_SPAM, key, value, _positive(key, value))


def _disk_growth(key: str, value: str) -> float:
    return _at_most(MAX_DISK_GROWTH, key, value, _positive(key, value))


def _features_mode(key: str, value: str) -> str:
    if value not in FEATURE_MODES:
        raise ConfigError(f"{key} must be one of {', '.join(FEATURE_MODES)}, got {value!r}")
    return value


def _schedule(key: str, value: str) -> Schedule:
    try:
        return parse_schedule(value)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from exc


def _canary(
    env: Mapping[str, str],
    models: tuple[str, ...],
    shadow: frozenset[str],
    weights: Mapping[str, float],
) -> tuple[str | None, float | None]:
    model = _get(env, "QSC_CANARY_MODEL")
    raw_weight = _get(env, "QSC_CANARY_WEIGHT")
    if model is None:
        if raw_weight is not None:
            raise ConfigError("QSC_CANARY_WEIGHT is set without QSC_CANARY_MODEL")
        return None, None
    if model not in models:
        raise ConfigError(f"QSC_CANARY_MODEL {model!r} is not a configured model")
    if model in shadow:
        raise ConfigError(f"canary model {model} is shadow-only")
    if raw_weight is None:
        return model, None
    weight = parse_float("QSC_CANARY_WEIGHT", raw_weight)
    if not 0.0 < weight < 1.0:
        raise ConfigError(f"QSC_CANARY_WEIGHT must be in (0, 1), got {raw_weight!r}")
    if abs(weight - weights[model]) > CANARY_WEIGHT_TOLERANCE:
        raise ConfigError(
            f"QSC_CANARY_WEIGHT {raw_weight} does not match the effective weight of {model} "
            f"({format_weight(weights[model])})"
        )
    return model, weight


def _conf_cap(env: Mapping[str, str], canary_model: str | None) -> float | None:
    """QSC_CANARY_CONF_CAP: the highest confidence the canary model votes and publishes with,
    in (0, 1]; only with a canary."""
    raw_cap = _get(env, "QSC_CANARY_CONF_CAP")
    if raw_cap is None:
        return None
    if canary_model is None:
        raise ConfigError("QSC_CANARY_CONF_CAP is set without QSC_CANARY_MODEL")
    cap = parse_float("QSC_CANARY_CONF_CAP", raw_cap)
    if not 0.0 < cap <= 1.0:
        raise ConfigError(f"QSC_CANARY_CONF_CAP must be in (0, 1], got {raw_cap!r}")
    return cap


def _random_seed() -> int:
    return random.SystemRandom().randrange(2**32)


def load_config(
    env: Mapping[str, str], random_seed: Callable[[], int] = _random_seed
) -> EngineConfig:
    """Validate ``env`` and return the configuration; raises ConfigError on any bad value."""
    models_file = _optional(env, "ENGINE_MODELS_FILE", _absolute_path) or DEFAULT_MODELS_FILE
    baseline = load_baseline(models_file)
    models = tuple(baseline)
    _model_switches(env, models)

    shadow = frozenset(
        m for m in models if _optional(env, f"{m.upper()}_SHADOW_ONLY", parse_bool) is True
    )
    if shadow == frozenset(models):
        raise ConfigError("every model is shadow-only: no model would vote")
    raw_weights = _get(env, "QSC_MODEL_WEIGHTS")
    weights = baseline if raw_weights is None else parse_model_weights(raw_weights, models)
    canary_model, canary_weight = _canary(env, models, shadow, weights)

    schedules = {m: _optional(env, f"SIM_{m.upper()}", _schedule) for m in models}
    features_mode = _optional(env, "SIM_FEATURES", _features_mode) or "healthy"
    fail_start = _optional(env, "SIM_FAIL_START", parse_bool) is True
    crash_after = _optional(env, "SIM_CRASH_AFTER", _positive)
    silent = _optional(env, "SIM_SILENT", parse_bool) is True
    silent_after = _optional(env, "SIM_SILENT_AFTER", _positive)
    build_override = _optional(env, "SIM_BUILD_OVERRIDE", _build_sha)
    shadow_leak = _optional(env, "SIM_SHADOW_LEAK", parse_bool) is True
    payload_pad = _optional(env, "SIM_PAYLOAD_PAD", _payload_pad) or 0
    log_spam = _optional(env, "SIM_LOG_SPAM", _log_spam) or 0.0
    disk_growth = _optional(env, "SIM_DISK_GROWTH", _disk_growth) or 0.0
    gated = _optional(env, "SIM_FAULTS_ONLY_WITH_CANARY", parse_bool) is True
    faults_active = not gated or canary_model is not None

    seed = _optional(env, "ENGINE_SEED", parse_int)
    rate = _optional(env, "ENGINE_RATE", _rate)
    maxlen = _optional(env, "ENGINE_STREAM_MAXLEN", parse_int)
    if maxlen == 0:
        raise ConfigError("ENGINE_STREAM_MAXLEN must be >= 1")
    stream = _get(env, "ENGINE_STREAM") or DEFAULT_STREAM
    if not STREAM_RE.match(stream):
        raise ConfigError(f"ENGINE_STREAM: invalid stream name {stream!r}")
    symbols = _get(env, "ENGINE_SYMBOLS")
    interval = _optional(env, "ENGINE_SHADOW_LOG_INTERVAL", _non_negative)
    patchtst_path = _get(env, "PATCHTST_MODEL_PATH") or DEFAULT_PATCHTST_MODEL_PATH

    return EngineConfig(
        models=models,
        baseline_weights=MappingProxyType(dict(baseline)),
        weights=MappingProxyType(dict(weights)),
        shadow=shadow,
        schedules=MappingProxyType(
            {m: (s if faults_active and s else HEALTHY_SCHEDULE) for m, s in schedules.items()}
        ),
        models_file=models_file,
        patchtst_model_path=_absolute_path("PATCHTST_MODEL_PATH", patchtst_path),
        canary_model=canary_model,
        canary_weight=canary_weight,
        canary_conf_cap=_conf_cap(env, canary_model),
        weights_overridden=raw_weights is not None,
        rate=DEFAULT_RATE if rate is None else rate,
        redis_url=validate_redis_url(_get(env, "REDIS_URL") or DEFAULT_REDIS_URL),
        stream=stream,
        stream_maxlen=DEFAULT_STREAM_MAXLEN if maxlen is None else maxlen,
        db_path=_absolute_path("ENGINE_DB", _get(env, "ENGINE_DB") or DEFAULT_DB),
        symbols=DEFAULT_SYMBOLS if symbols is None else parse_symbols(symbols),
        seed=random_seed() if seed is None else seed,
        shadow_log_interval=DEFAULT_SHADOW_LOG_INTERVAL if interval is None else interval,
        features_mode=features_mode if faults_active else "healthy",
        fail_start=fail_start and faults_active,
        crash_after=crash_after if faults_active else None,
        silent=silent and faults_active,
        silent_after=silent_after if faults_active else None,
        build_override=build_override if faults_active else None,
        shadow_leak=shadow_leak and faults_active,
        payload_pad=payload_pad if faults_active else 0,
        faults_only_with_canary=gated,
        faults_active=faults_active,
        log_spam=log_spam if faults_active else 0.0,
        disk_growth=disk_growth if faults_active else 0.0,
    )
