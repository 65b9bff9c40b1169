"""Unit tests for the engine simulator's configuration parsing (lab/engine/ai_engine/config.py)."""

import json
from pathlib import Path

import pytest

from ai_engine.config import (
    DEFAULT_MODELS_FILE,
    ConfigError,
    display_name,
    format_pct,
    format_weight,
    format_weights,
    load_baseline,
    load_config,
    parse_model_weights,
)
from ai_engine.models import HEALTHY_SCHEDULE

MODELS = ("xgb", "lgbm", "nhits", "patchtst")
CANARY_WEIGHTS = "xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:0.1"


def load(**env: str):
    return load_config(env, random_seed=lambda: 4242)


def test_shipped_models_file_is_the_baseline() -> None:
    assert json.loads(DEFAULT_MODELS_FILE.read_text()) == {
        "models": {"xgb": 0.25, "lgbm": 0.25, "nhits": 0.30, "patchtst": 0.20}
    }


def test_defaults() -> None:
    config = load()
    assert config.models == MODELS
    assert dict(config.weights) == {"xgb": 0.25, "lgbm": 0.25, "nhits": 0.3, "patchtst": 0.2}
    assert dict(config.baseline_weights) == dict(config.weights)
    assert config.weights_overridden is False
    assert config.shadow == frozenset()
    assert config.voters == MODELS
    assert all(config.schedules[m] == HEALTHY_SCHEDULE for m in MODELS)
    assert config.models_file == DEFAULT_MODELS_FILE
    assert config.patchtst_model_path == Path("/opt/quantum/models/patchtst.pth")
    assert config.canary_model is None
    assert config.canary_weight is None
    assert config.rate == 10.0
    assert config.redis_url == "redis://127.0.0.1:6379/0"
    assert config.stream == "quantum:stream:trade.intent"
    assert config.stream_maxlen == 200_000
    assert config.db_path == Path("/opt/quantum/data/quantum_trader.db")
    assert config.symbols == ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT")
    assert config.seed == 4242
    assert config.shadow_log_interval == 10.0
    assert config.features_mode == "healthy"
    assert (config.fail_start, config.crash_after, config.silent) == (False, None, False)
    assert config.build_override is None
    assert (config.shadow_leak, config.payload_pad) == (False, 0)
    assert config.faults_only_with_canary is False
    assert config.faults_active is True


def test_config_is_frozen() -> None:
    config = load()
    with pytest.raises(AttributeError):
        config.rate = 5.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.weights["xgb"] = 1.0  # type: ignore[index]


def test_every_variable_is_read(tmp_path: Path) -> None:
    config = load(
        ENGINE_RATE="2.5",
        REDIS_URL="redis://:secret@redis.lab:6380/3",
        ENGINE_STREAM="lab:stream:x",
        ENGINE_STREAM_MAXLEN="1000",
        ENGINE_DB=str(tmp_path / "t.db"),
        ENGINE_SYMBOLS="BTCUSDT, XRPUSDT",
        ENGINE_SEED="7",
        ENGINE_SHADOW_LOG_INTERVAL="0",
        PATCHTST_MODEL_PATH="/srv/m.pth",
        PATCHTST_SHADOW_ONLY="true",
        XGB_SHADOW_ONLY="false",
        SIM_XGB="noisy",
        SIM_LGBM="healthy,inactive@1.5,flaky@30",
        SIM_FEATURES="flatline",
        SIM_FAIL_START="yes",
        SIM_CRASH_AFTER="12.5",
        SIM_SILENT="1",
        SIM_BUILD_OVERRIDE="DEADBEEF",
        SIM_SHADOW_LEAK="yes",
        SIM_PAYLOAD_PAD="1500",
    )
    assert config.rate == 2.5
    assert config.redis_url == "redis://:secret@redis.lab:6380/3"
    assert config.stream == "lab:stream:x"
    assert config.stream_maxlen == 1000
    assert config.db_path == tmp_path / "t.db"
    assert config.symbols == ("BTCUSDT", "XRPUSDT")
    assert config.seed == 7
    assert config.shadow_log_interval == 0.0
    assert config.patchtst_model_path == Path("/srv/m.pth")
    assert config.shadow == frozenset({"patchtst"})
    assert config.voters == ("xgb", "lgbm", "nhits")
    assert config.schedules["xgb"] == ((0.0, "noisy"),)
    assert config.schedules["lgbm"] == ((0.0, "healthy"), (1.5, "inactive"), (30.0, "flaky"))
    assert config.schedules["nhits"] == HEALTHY_SCHEDULE
    assert config.features_mode == "flatline"
    assert (config.fail_start, config.crash_after, config.silent) == (True, 12.5, True)
    assert config.build_override == "DEADBEEF"
    assert (config.shadow_leak, config.payload_pad) == (True, 1500)


@pytest.mark.parametrize(
    ("value", "expected"), [("0", 0), ("1", 1), ("007", 7), ("100000", 100_000), ("", 0)]
)
def test_payload_pad_range(value: str, expected: int) -> None:
    assert load(SIM_PAYLOAD_PAD=value).payload_pad == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        *[("true", True), ("TRUE", True), ("1", True), ("yes", True), ("Yes", True)],
        *[("false", False), ("0", False), ("no", False), ("NO", False), ("", False)],
    ],
)
def test_shadow_only_booleans(value: str, expected: bool) -> None:
    assert ("nhits" in load(NHITS_SHADOW_ONLY=value).shadow) is expected


def test_empty_values_count_as_unset() -> None:
    config = load(ENGINE_RATE="", QSC_CANARY_MODEL=" ", SIM_XGB="", ENGINE_SEED="")
    assert config.rate == 10.0
    assert config.canary_model is None
    assert config.schedules["xgb"] == HEALTHY_SCHEDULE
    assert config.seed == 4242


def test_redis_url_forms() -> None:
    assert load(REDIS_URL="rediss://h:6379").redis_url == "rediss://h:6379"
    assert load(REDIS_URL="unix:///run/redis.sock").redis_url == "unix:///run/redis.sock"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ENGINE_RATE": "abc"}, "ENGINE_RATE must be a number"),
        ({"ENGINE_RATE": "0"}, "ENGINE_RATE must be > 0"),
        ({"ENGINE_RATE": "-1"}, "ENGINE_RATE must be > 0"),
        ({"ENGINE_RATE": "nan"}, "ENGINE_RATE must be a number"),
        ({"ENGINE_RATE": "inf"}, "ENGINE_RATE must be a number"),
        ({"ENGINE_RATE": "1e400"}, "ENGINE_RATE must be finite"),
        ({"ENGINE_RATE": "1_0"}, "ENGINE_RATE must be a number"),
        ({"ENGINE_RATE": "200000"}, "ENGINE_RATE must be <="),
        ({"REDIS_URL": "http://h:6379"}, "REDIS_URL scheme"),
        ({"REDIS_URL": "redis://:6379"}, "REDIS_URL needs a host"),
        ({"REDIS_URL": "redis://h:99999"}, "REDIS_URL is not a valid URL"),
        ({"REDIS_URL": "redis://h:0"}, "REDIS_URL port"),
        ({"REDIS_URL": "redis://h/x"}, "REDIS_URL database"),
        ({"REDIS_URL": "unix://relative"}, "REDIS_URL unix://"),
        ({"ENGINE_STREAM": "bad stream"}, "ENGINE_STREAM: invalid stream name"),
        ({"ENGINE_STREAM_MAXLEN": "0"}, "ENGINE_STREAM_MAXLEN must be >= 1"),
        ({"ENGINE_STREAM_MAXLEN": "-5"}, "ENGINE_STREAM_MAXLEN must be a non-negative integer"),
        ({"ENGINE_STREAM_MAXLEN": "1.5"}, "ENGINE_STREAM_MAXLEN must be a non-negative integer"),
        ({"ENGINE_DB": "relative.db"}, "ENGINE_DB must be an absolute path"),
        ({"ENGINE_SYMBOLS": "btcusdt"}, "ENGINE_SYMBOLS: invalid symbol"),
        ({"ENGINE_SYMBOLS": "BTCUSDT,,ETHUSDT"}, "ENGINE_SYMBOLS: invalid symbol"),
        ({"ENGINE_SYMBOLS": "B"}, "ENGINE_SYMBOLS: invalid symbol"),
        ({"ENGINE_SYMBOLS": "BTCUSDT,BTCUSDT"}, "ENGINE_SYMBOLS: duplicate"),
        ({"ENGINE_SEED": "x1"}, "ENGINE_SEED must be a non-negative integer"),
        ({"ENGINE_SEED": "-1"}, "ENGINE_SEED must be a non-negative integer"),
        ({"ENGINE_SHADOW_LOG_INTERVAL": "-1"}, "ENGINE_SHADOW_LOG_INTERVAL must be >= 0"),
        ({"ENGINE_MODELS_FILE": "models.json"}, "ENGINE_MODELS_FILE must be an absolute path"),
        ({"PATCHTST_MODEL_PATH": "patchtst.pth"}, "PATCHTST_MODEL_PATH must be an absolute"),
        ({"PATCHTST_SHADOW_ONLY": "maybe"}, "PATCHTST_SHADOW_ONLY must be true/false"),
        ({"FOO_SHADOW_ONLY": "true"}, "FOO_SHADOW_ONLY names no configured model"),
        ({"SIM_FOO": "healthy"}, "unknown simulator variable SIM_FOO"),
        ({"SIM_XGB": "broken"}, "SIM_XGB: unknown behaviour 'broken'"),
        ({"SIM_XGB": "healthy,constant@10,noisy@5"}, "strictly increasing"),
        ({"SIM_XGB": "healthy,constant@0"}, "strictly increasing"),
        ({"SIM_XGB": "healthy,constant"}, "is not '<behaviour>@<seconds>'"),
        ({"SIM_XGB": "healthy,constant@-1"}, "is not '<behaviour>@<seconds>'"),
        ({"SIM_XGB": "constant@5"}, "must start with a behaviour name"),
        ({"SIM_XGB": ",constant@5"}, "must start with a behaviour name"),
        ({"SIM_XGB": "healthy,nope@5"}, "unknown behaviour 'nope'"),
        ({"SIM_FEATURES": "broken"}, "SIM_FEATURES must be one of"),
        ({"SIM_FAIL_START": "2"}, "SIM_FAIL_START must be true/false"),
        ({"SIM_CRASH_AFTER": "0"}, "SIM_CRASH_AFTER must be > 0"),
        ({"SIM_CRASH_AFTER": "soon"}, "SIM_CRASH_AFTER must be a number"),
        ({"SIM_SILENT": "on"}, "SIM_SILENT must be true/false"),
        ({"SIM_SILENT_AFTER": "0"}, "SIM_SILENT_AFTER must be > 0"),
        ({"SIM_BUILD_OVERRIDE": "abc"}, "SIM_BUILD_OVERRIDE must be 7-40 hex"),
        ({"SIM_BUILD_OVERRIDE": "zzzzzzz"}, "SIM_BUILD_OVERRIDE must be 7-40 hex"),
        ({"SIM_BUILD_OVERRIDE": "a" * 41}, "SIM_BUILD_OVERRIDE must be 7-40 hex"),
        ({"SIM_SHADOW_LEAK": "on"}, "SIM_SHADOW_LEAK must be true/false, 1/0 or yes/no"),
        ({"SIM_PAYLOAD_PAD": "100001"}, "SIM_PAYLOAD_PAD must be <= 100000, got '100001'"),
        ({"SIM_PAYLOAD_PAD": "-1"}, "SIM_PAYLOAD_PAD must be a non-negative integer"),
        ({"SIM_PAYLOAD_PAD": "1.5"}, "SIM_PAYLOAD_PAD must be a non-negative integer"),
        ({"SIM_PAYLOAD_PAD": "1e3"}, "SIM_PAYLOAD_PAD must be a non-negative integer"),
        ({"SIM_PAYLOAD_PAD": "1_000"}, "SIM_PAYLOAD_PAD must be a non-negative integer"),
        ({"SIM_FAULTS_ONLY_WITH_CANARY": "x"}, "SIM_FAULTS_ONLY_WITH_CANARY must be"),
    ],
)
def test_invalid_values_are_config_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load(**env)
    assert message in str(excinfo.value)


def test_at_least_one_model_must_vote() -> None:
    env = {f"{m.upper()}_SHADOW_ONLY": "true" for m in MODELS}
    with pytest.raises(ConfigError, match="every model is shadow-only"):
        load(**env)


def test_faults_are_validated_even_when_gated_off() -> None:
    with pytest.raises(ConfigError, match="SIM_CRASH_AFTER"):
        load(SIM_FAULTS_ONLY_WITH_CANARY="1", SIM_CRASH_AFTER="never")
    with pytest.raises(ConfigError, match="SIM_SHADOW_LEAK"):
        load(SIM_FAULTS_ONLY_WITH_CANARY="1", SIM_SHADOW_LEAK="sometimes")
    with pytest.raises(ConfigError, match="SIM_PAYLOAD_PAD"):
        load(SIM_FAULTS_ONLY_WITH_CANARY="1", SIM_PAYLOAD_PAD="200000")


# --- models file ---------------------------------------------------------------------------


def write_models(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.json"
    path.write_text(text)
    return path


def test_models_file_override_sets_order_and_weights(tmp_path: Path) -> None:
    path = write_models(tmp_path, '{"models": {"beta": 0.6, "alpha_2": 0.4}}')
    config = load(ENGINE_MODELS_FILE=str(path), BETA_SHADOW_ONLY="1", SIM_ALPHA_2="noisy")
    assert config.models == ("beta", "alpha_2")
    assert dict(config.weights) == {"beta": 0.6, "alpha_2": 0.4}
    assert config.voters == ("alpha_2",)
    assert config.models_file == path
    with pytest.raises(ConfigError, match="PATCHTST_SHADOW_ONLY names no configured model"):
        load(ENGINE_MODELS_FILE=str(path), PATCHTST_SHADOW_ONLY="1")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "invalid JSON"),
        ('{"models": {"xgb": 0.5, "xgb": 0.5}}', "duplicate keys ['xgb']"),
        ("[1, 2]", "expected"),
        ('{"models": {}}', "expected"),
        ('{"weights": {"xgb": 1}}', "expected"),
        ('{"models": {"XGB": 1.0}}', "invalid model name 'XGB'"),
        ('{"models": {"1abc": 1.0}}', "invalid model name '1abc'"),
        ('{"models": {"' + "a" * 33 + '": 1.0}}', "invalid model name"),
        ('{"models": {"features": 1.0}}', "clashes with SIM_FEATURES"),
        ('{"models": {"shadow_leak": 1.0}}', "clashes with SIM_SHADOW_LEAK"),
        ('{"models": {"payload_pad": 1.0}}', "clashes with SIM_PAYLOAD_PAD"),
        ('{"models": {"xgb": "0.5", "lgbm": 0.5}}', "weight of xgb must be a number"),
        ('{"models": {"xgb": true}}', "weight of xgb must be a number"),
        ('{"models": {"xgb": 0, "lgbm": 1}}', "weight of xgb must be finite and in (0, 1]"),
        ('{"models": {"xgb": 1.5, "lgbm": -0.5}}', "weight of xgb must be finite"),
        ('{"models": {"xgb": NaN}}', "weight of xgb must be finite"),
        ('{"models": {"xgb": 0.5, "lgbm": 0.4}}', "weights must sum to 1"),
    ],
)
def test_invalid_models_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_baseline(write_models(tmp_path, text))
    assert message in str(excinfo.value)


def test_missing_models_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load(ENGINE_MODELS_FILE=str(tmp_path / "absent.json"))


def test_single_model_with_integer_weight(tmp_path: Path) -> None:
    assert load_baseline(write_models(tmp_path, '{"models": {"solo": 1}}')) == {"solo": 1.0}


# --- QSC_MODEL_WEIGHTS and canary rules ------------------------------------------------------


def test_model_weights_replace_the_baseline_in_model_order() -> None:
    config = load(QSC_MODEL_WEIGHTS="patchtst:0.1, nhits:0.3375,lgbm:0.28125,xgb:0.28125")
    assert list(config.weights.items()) == [
        ("xgb", 0.28125),
        ("lgbm", 0.28125),
        ("nhits", 0.3375),
        ("patchtst", 0.1),
    ]
    assert config.weights_overridden is True
    assert dict(config.baseline_weights)["patchtst"] == 0.2


def test_model_weights_sum_tolerance() -> None:
    weights = parse_model_weights("xgb:0.2500004,lgbm:0.25,nhits:0.3,patchtst:0.2", MODELS)
    assert weights["xgb"] == 0.2500004
    with pytest.raises(ConfigError, match="sum to 1"):
        parse_model_weights("xgb:0.250002,lgbm:0.25,nhits:0.3,patchtst:0.2", MODELS)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("xgb:0.3,lgbm:0.3,nhits:0.4", "missing models patchtst"),
        ("xgb:0.25,lgbm:0.25,nhits:0.3,patchtst:0.1,foo:0.1", "unknown model 'foo'"),
        ("xgb:0.25,xgb:0.25,nhits:0.3,patchtst:0.2", "xgb named more than once"),
        ("xgb:0.25,lgbm:abc,nhits:0.3,patchtst:0.2", "must be a number"),
        ("xgb:nan,lgbm:0.25,nhits:0.3,patchtst:0.2", "must be a number"),
        ("xgb:inf,lgbm:0.25,nhits:0.3,patchtst:0.2", "must be a number"),
        ("xgb:0,lgbm:0.25,nhits:0.45,patchtst:0.3", "weight of xgb must be finite and in (0, 1]"),
        ("xgb:1.2,lgbm:0.25,nhits:0.3,patchtst:0.2", "weight of xgb must be finite"),
        ("xgb:-0.1,lgbm:0.5,nhits:0.4,patchtst:0.2", "weight of xgb must be finite"),
        ("xgb:0.3,lgbm:0.25,nhits:0.3,patchtst:0.2", "weights must sum to 1"),
        ("xgb=0.25,lgbm:0.25,nhits:0.3,patchtst:0.2", "expected 'model:weight,...'"),
        ("xgb:0.25,,lgbm:0.25,nhits:0.3,patchtst:0.2", "expected 'model:weight,...'"),
        ("xgb:,lgbm:0.25,nhits:0.3,patchtst:0.2", "expected 'model:weight,...'"),
    ],
)
def test_invalid_model_weights(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load(QSC_MODEL_WEIGHTS=value)
    assert message in str(excinfo.value)
    assert str(excinfo.value).startswith("QSC_MODEL_WEIGHTS")


def test_canary_with_matching_weight() -> None:
    config = load(
        QSC_MODEL_WEIGHTS=CANARY_WEIGHTS, QSC_CANARY_MODEL="patchtst", QSC_CANARY_WEIGHT="0.1"
    )
    assert (config.canary_model, config.canary_weight) == ("patchtst", 0.1)


def test_canary_without_weight_and_on_baseline_weights() -> None:
    assert load(QSC_CANARY_MODEL="nhits").canary_model == "nhits"
    assert load(QSC_CANARY_MODEL="patchtst", QSC_CANARY_WEIGHT="0.2").canary_weight == 0.2


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"QSC_CANARY_WEIGHT": "0.1"}, "QSC_CANARY_WEIGHT is set without QSC_CANARY_MODEL"),
        ({"QSC_CANARY_MODEL": "foo"}, "QSC_CANARY_MODEL 'foo' is not a configured model"),
        (
            {"QSC_CANARY_MODEL": "patchtst", "PATCHTST_SHADOW_ONLY": "true"},
            "canary model patchtst is shadow-only",
        ),
        (
            {
                "QSC_CANARY_MODEL": "patchtst",
                "QSC_MODEL_WEIGHTS": CANARY_WEIGHTS,
                "QSC_CANARY_WEIGHT": "0.15",
            },
            "does not match the effective weight of patchtst (0.1)",
        ),
        (
            {
                "QSC_CANARY_MODEL": "patchtst",
                "QSC_MODEL_WEIGHTS": CANARY_WEIGHTS,
                "QSC_CANARY_WEIGHT": "0.10000001",
            },
            "does not match the effective weight",
        ),
        ({"QSC_CANARY_MODEL": "patchtst", "QSC_CANARY_WEIGHT": "0.1"}, "does not match"),
        ({"QSC_CANARY_MODEL": "xgb", "QSC_CANARY_WEIGHT": "1"}, "must be in (0, 1)"),
        ({"QSC_CANARY_MODEL": "xgb", "QSC_CANARY_WEIGHT": "0"}, "must be in (0, 1)"),
        ({"QSC_CANARY_MODEL": "xgb", "QSC_CANARY_WEIGHT": "x"}, "must be a number"),
    ],
)
def test_canary_rules(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load(**env)
    assert message in str(excinfo.value)


# --- SIM_FAULTS_ONLY_WITH_CANARY --------------------------------------------------------------

FAULTS = {
    "SIM_FAULTS_ONLY_WITH_CANARY": "1",
    "SIM_FAIL_START": "1",
    "SIM_CRASH_AFTER": "5",
    "SIM_SILENT": "1",
    "SIM_SILENT_AFTER": "9",
    "SIM_BUILD_OVERRIDE": "abcdef1",
    "SIM_FEATURES": "nan",
    "SIM_SHADOW_LEAK": "1",
    "SIM_PAYLOAD_PAD": "1500",
    "SIM_PATCHTST": "healthy,constant@120",
    "SIM_XGB": "inactive",
}


def test_gated_faults_are_off_without_canary() -> None:
    config = load(**FAULTS)
    assert config.faults_only_with_canary is True
    assert config.faults_active is False
    assert (config.fail_start, config.crash_after, config.silent) == (False, None, False)
    assert config.silent_after is None
    assert config.build_override is None
    assert config.features_mode == "healthy"
    assert (config.shadow_leak, config.payload_pad) == (False, 0)
    assert all(config.schedules[m] == HEALTHY_SCHEDULE for m in MODELS)


def test_gated_faults_apply_with_canary() -> None:
    config = load(**FAULTS, QSC_CANARY_MODEL="patchtst")
    assert config.faults_active is True
    assert (config.fail_start, config.crash_after, config.silent) == (True, 5.0, True)
    assert config.silent_after == 9.0
    assert config.build_override == "abcdef1"
    assert config.features_mode == "nan"
    assert (config.shadow_leak, config.payload_pad) == (True, 1500)
    assert config.schedules["patchtst"] == ((0.0, "healthy"), (120.0, "constant"))
    assert config.schedules["xgb"] == ((0.0, "inactive"),)


def test_ungated_faults_apply_without_canary() -> None:
    env = dict(FAULTS, SIM_FAULTS_ONLY_WITH_CANARY="0")
    config = load(**env)
    assert config.faults_active is True
    assert config.fail_start is True
    assert (config.shadow_leak, config.payload_pad) == (True, 1500)


# --- formatting ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weight", "text"),
    [
        *[(0.28125, "28.125"), (0.1, "10"), (0.3375, "33.75"), (0.25, "25"), (1.0, "100")],
        *[(0.123456, "12.3456"), (0.1234567, "12.3457"), (0.2, "20"), (0.005, "0.5")],
    ],
)
def test_format_pct(weight: float, text: str) -> None:
    assert format_pct(weight) == text


def test_format_weights() -> None:
    weights = {"xgb": 0.28125, "lgbm": 0.28125, "nhits": 0.3375, "patchtst": 0.1}
    assert format_weights(MODELS, weights) == CANARY_WEIGHTS
    assert format_weight(1.0) == "1"
    assert parse_model_weights(format_weights(MODELS, weights), MODELS) == weights


def test_display_names() -> None:
    assert [display_name(m) for m in (*MODELS, "tft")] == [
        "XGB",
        "LGBM",
        "NHiTS",
        "PatchTST",
        "TFT",
    ]
