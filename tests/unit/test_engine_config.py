"""Unit tests of the expected engine configuration (model_safety.engine.config): the engine's
own rules applied to its unit's files (checked against the lab engine itself), systemd's
merge of Environment= and EnvironmentFile=, systemctl show parsing, reading a host through a
fake runner and real files, and every mismatch between a start and its files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ai_engine.config import ConfigError, load_config
from ai_engine.service import startup_lines
from model_safety.engine import config as ec
from model_safety.engine.startup import parse_startup

BASELINE = {"xgb": 0.25, "lgbm": 0.25, "nhits": 0.30, "patchtst": 0.20}
CANARY = {"xgb": 0.28125, "lgbm": 0.28125, "nhits": 0.3375, "patchtst": 0.1}
CANARY_TEXT = "xgb:0.28125,lgbm:0.28125,nhits:0.3375,patchtst:0.1"
UNIT = "quantum-ai-engine.service"
SHOW_ARGV = ["systemctl", "show", UNIT, "--property=Environment,EnvironmentFiles"]


def env_text(**values: str) -> str:
    return "# engine\nREDIS_URL=redis://:hunter2@127.0.0.1:6379/0\n" + "".join(
        f"{key}={value}\n" for key, value in values.items()
    )


def expected(**values: str) -> dict:
    return ec.expected_config(env_text(**values), {}, BASELINE)


def engine_startup(environment: dict[str, str]) -> dict:
    """What the lab engine logs at start with ``environment``, as a StartupReport dict."""
    config = load_config(environment, random_seed=lambda: 1)
    return parse_startup(["AI_ENGINE_BUILD: 18c7dbb", *startup_lines(config)]).as_dict()


# --------------------------------------------------------------------------- the engine's rules


def test_baseline_when_nothing_is_set():
    assert expected() == {
        "voting": BASELINE,
        "shadow": {},
        "weights": BASELINE,
        "canary": None,
        "canary_weight": None,
        "canary_conf_cap": None,
    }


@pytest.mark.parametrize("value", ["true", "TRUE", "Yes", "1"])
def test_shadow_only_true_spellings(value):
    # Environment= values may carry spaces; the engine strips them.
    from_unit = ec.expected_config("", {"PATCHTST_SHADOW_ONLY": f" {value} "}, BASELINE)
    result = expected(PATCHTST_SHADOW_ONLY=value)
    assert from_unit == result
    assert result["shadow"] == {"patchtst": 0.2}
    assert result["voting"] == {"xgb": 0.25, "lgbm": 0.25, "nhits": 0.3}
    assert result["weights"] == BASELINE


@pytest.mark.parametrize("value", ["false", "No", "0", "FALSE", ""])
def test_shadow_only_false_spellings_and_empty(value):
    assert expected(PATCHTST_SHADOW_ONLY=value)["shadow"] == {}


def test_canary_weights_and_weight():
    result = expected(
        QSC_MODEL_WEIGHTS=CANARY_TEXT, QSC_CANARY_MODEL="patchtst", QSC_CANARY_WEIGHT="0.10"
    )
    assert result == {
        "voting": CANARY,
        "shadow": {},
        "weights": CANARY,
        "canary": "patchtst",
        "canary_weight": 0.1,
        "canary_conf_cap": None,
    }
    # Without QSC_CANARY_WEIGHT the canary's weight is its effective weight.
    assert expected(QSC_CANARY_MODEL="nhits")["canary_weight"] == 0.3
    # Empty values count as unset, as in the engine.
    assert expected(QSC_CANARY_MODEL="", QSC_CANARY_WEIGHT="", QSC_MODEL_WEIGHTS="") == expected()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"LSTM_SHADOW_ONLY": "true"}, "LSTM_SHADOW_ONLY names no configured model"),
        ({"PATCHTST_SHADOW_ONLY": "maybe"}, "PATCHTST_SHADOW_ONLY must be true/false"),
        (
            {f"{m.upper()}_SHADOW_ONLY": "1" for m in BASELINE},
            "every model is shadow-only",
        ),
        ({"QSC_MODEL_WEIGHTS": "xgb:0.5,lgbm:0.5"}, "QSC_MODEL_WEIGHTS: missing models"),
        ({"QSC_MODEL_WEIGHTS": "xgb:1,lgbm:1,nhits:1,patchtst:1"}, "must sum to 1"),
        ({"QSC_CANARY_MODEL": "lstm"}, "QSC_CANARY_MODEL 'lstm' is not a configured model"),
        (
            {"QSC_CANARY_MODEL": "patchtst", "PATCHTST_SHADOW_ONLY": "yes"},
            "canary model patchtst is shadow-only",
        ),
        ({"QSC_CANARY_WEIGHT": "0.1"}, "QSC_CANARY_WEIGHT is set without QSC_CANARY_MODEL"),
        (
            {"QSC_CANARY_MODEL": "patchtst", "QSC_CANARY_WEIGHT": "0.1"},
            "does not match the effective weight of patchtst",
        ),
        (
            {"QSC_CANARY_MODEL": "patchtst", "QSC_CANARY_WEIGHT": "1"},
            "QSC_CANARY_WEIGHT must be in",
        ),
        (
            {"QSC_CANARY_MODEL": "patchtst", "QSC_CANARY_WEIGHT": "nan"},
            "QSC_CANARY_WEIGHT must be in",
        ),
    ],
)
def test_what_the_engine_refuses_is_refused(values, message):
    with pytest.raises(ec.EngineConfigError, match=message):
        expected(**values)
    with pytest.raises(ConfigError):
        load_config(values)


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"PATCHTST_SHADOW_ONLY": "true"},
        {"PATCHTST_SHADOW_ONLY": "yes", "QSC_MODEL_WEIGHTS": "xgb:.4,lgbm:.2,nhits:.2,patchtst:.2"},
        {"QSC_MODEL_WEIGHTS": CANARY_TEXT, "QSC_CANARY_MODEL": "patchtst"},
        {
            "QSC_MODEL_WEIGHTS": CANARY_TEXT,
            "QSC_CANARY_MODEL": "patchtst",
            "QSC_CANARY_WEIGHT": "0.1",
            "NHITS_SHADOW_ONLY": "1",
        },
        {"QSC_MODEL_WEIGHTS": "xgb:0.3333333,lgbm:0.3333333,nhits:0.3333334,patchtst:1e-9"},
    ],
)
def test_the_lab_engine_runs_exactly_the_expectation(values):
    result = expected(**values)
    assert ec.config_differences(engine_startup(values), result) == []


def test_invalid_baseline_is_refused():
    for baseline, message in [
        ({}, "non-empty mapping"),
        ([("xgb", 1.0)], "non-empty mapping"),
        ({"XGB": 1.0}, "not a valid model name"),
        ({"xgb": True}, r"weight of xgb must be in \(0, 1\]"),
        ({"xgb": "1"}, r"weight of xgb must be in \(0, 1\]"),
        ({"xgb": 0.0, "lgbm": 1.0}, r"weight of xgb must be in \(0, 1\]"),
        ({"xgb": 0.5, "lgbm": 0.4}, "must sum to 1"),
    ]:
        with pytest.raises(ec.EngineConfigError, match=message):
            ec.expected_config("", {}, baseline)


# --------------------------------------------------------------------------- systemd's merge


def test_env_file_values_override_environment():
    unit = {"PATCHTST_SHADOW_ONLY": "true", "QSC_CANARY_MODEL": "xgb"}
    result = ec.expected_config(env_text(PATCHTST_SHADOW_ONLY="false"), unit, BASELINE)
    assert result["shadow"] == {} and result["canary"] == "xgb"
    assert ec.expected_config("", unit, BASELINE)["shadow"] == {"patchtst": 0.2}
    merged = ec.merged_environment(
        {"A": "1", "B": "1"}, [("/one", "A=2\nC=2\n"), ("/two", "C=3\n")]
    )
    assert merged == {"A": "2", "B": "1", "C": "3"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("QSC_CANARY_MODEL=xgb\nQSC_CANARY_MODEL=xgb\n", "duplicate key QSC_CANARY_MODEL"),
        ("export QSC_CANARY_MODEL=xgb\n", "'export' is not allowed"),
        ('QSC_CANARY_MODEL="xgb"\n', "QSC_CANARY_MODEL is quoted or holds a backslash"),
        ("PATCHTST_SHADOW_ONLY=tr\\ue\n", "PATCHTST_SHADOW_ONLY is quoted or holds a backslash"),
    ],
)
def test_env_files_systemd_could_read_otherwise_are_refused(text, message):
    with pytest.raises(ec.EngineConfigError, match=message):
        ec.expected_config(text, {}, BASELINE)
    # A quoted value of another key is none of the model configuration's business.
    assert ec.expected_config('NOTE="a b"\n', {}, BASELINE)["shadow"] == {}


def test_model_environment_keeps_only_model_keys_and_hides_secrets():
    environment = {
        "REDIS_URL": "redis://:hunter2@x",
        "QSC_MODEL_WEIGHTS": CANARY_TEXT,
        "PATCHTST_SHADOW_ONLY": "false",
        "PATCHTST_MODEL_PATH": "/opt/quantum/models/patchtst.pth",
        "QSC_API_TOKEN": "hunter2",
        "API_SECRET": "hunter2",
    }
    assert ec.model_environment(environment) == {
        "PATCHTST_MODEL_PATH": "/opt/quantum/models/patchtst.pth",
        "PATCHTST_SHADOW_ONLY": "false",
        "QSC_API_TOKEN": "<hidden>",
        "QSC_MODEL_WEIGHTS": CANARY_TEXT,
    }


# --------------------------------------------------------------------------- systemctl show


def test_environment_property_as_systemctl_prints_it():
    value = (
        'A=1 "B=with space" "C=q\\"uote \\\\ back \\$x \\`y" D= "E=tab\\there" "F=\\x41" '
        'A=2 "G=a=b c"'
    )
    assert ec.parse_environment_property(value) == {
        "A": "2",
        "B": "with space",
        "C": 'q"uote \\ back $x `y',
        "D": "",
        "E": "tab\there",
        "F": "A",
        "G": "a=b c",
    }
    assert ec.parse_environment_property("") == {}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"A=open', "unterminated quote"),
        ('"A=1"B=2', "text after a closing quote"),
        ('A=x"y', "a quote or backslash in an unquoted word"),
        ('"A=\\q"', r"unknown escape \\q"),
        ('"A=\\xZZ"', r"bad \\x escape"),
        ("1A=x", "not a valid key"),
        ("A", "A has no '='"),
    ],
)
def test_bad_environment_property_is_refused(value, message):
    with pytest.raises(ec.EngineConfigError, match=message):
        ec.parse_environment_property(value)


def test_show_output_with_files_and_without():
    output = (
        'Environment=PYTHONUNBUFFERED=1 "QSC_NOTE=a b"\n'
        "EnvironmentFiles=/etc/quantum/ai-engine.env (ignore_errors=no)\n"
        "EnvironmentFiles=/etc/quantum/extra dir/x.env (ignore_errors=yes)\n"
    )
    assert ec.parse_unit_environment(output) == {
        "environment": {"PYTHONUNBUFFERED": "1", "QSC_NOTE": "a b"},
        "env_files": [
            {"path": "/etc/quantum/ai-engine.env", "ignore_errors": False},
            {"path": "/etc/quantum/extra dir/x.env", "ignore_errors": True},
        ],
    }
    assert ec.parse_unit_environment("Environment=\nEnvironmentFiles=\n") == {
        "environment": {},
        "env_files": [],
    }
    assert ec.parse_unit_environment("") == {"environment": {}, "env_files": []}


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("ExecStart=/bin/true\n", "unexpected line in systemctl show output"),
        ("EnvironmentFiles=/etc/x.env\n", "unexpected entry"),
        ("EnvironmentFiles=/etc/x.env (ignore_errors=maybe)\n", "unexpected entry"),
        ("EnvironmentFiles=etc/x.env (ignore_errors=no)\n", "not a normalised absolute path"),
        ("EnvironmentFiles=/etc/../x.env (ignore_errors=no)\n", "not a normalised absolute"),
        ("EnvironmentFiles=/etc/*.env (ignore_errors=no)\n", "a glob is not supported"),
    ],
)
def test_bad_show_output_is_refused(output, message):
    with pytest.raises(ec.EngineConfigError, match=message):
        ec.parse_unit_environment(output)


# --------------------------------------------------------------------------- reading a host


class FakeSystemctl:
    def __init__(self, stdout: str, rc: int = 0, stderr: str = "") -> None:
        self.reply = (rc, stdout, stderr)
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        self.calls.append(argv)
        return self.reply


def test_unit_expected_config_reads_the_files(tmp_path: Path):
    env = tmp_path / "ai-engine.env"
    env.write_text(env_text(QSC_MODEL_WEIGHTS=CANARY_TEXT, QSC_CANARY_MODEL="patchtst"))
    missing = tmp_path / "optional.env"
    run = FakeSystemctl(
        "Environment=PATCHTST_SHADOW_ONLY=true REDIS_URL=redis://:hunter2@x\n"
        f"EnvironmentFiles={missing} (ignore_errors=yes)\n"
        f"EnvironmentFiles={env} (ignore_errors=no)\n"
    )
    with pytest.raises(ec.EngineConfigError, match="canary model patchtst is shadow-only"):
        ec.unit_expected_config(run, UNIT, BASELINE)
    assert run.calls == [SHOW_ARGV]

    env.write_text(
        env_text(
            QSC_MODEL_WEIGHTS=CANARY_TEXT, QSC_CANARY_MODEL="patchtst", PATCHTST_SHADOW_ONLY="0"
        )
    )
    found = ec.unit_expected_config(run, UNIT, BASELINE)
    assert found["expected"]["canary"] == "patchtst" and found["expected"]["voting"] == CANARY
    assert found["env_files"] == [
        {"path": str(missing), "ignore_errors": True, "present": False, "sha256": None},
        {
            "path": str(env),
            "ignore_errors": False,
            "present": True,
            "sha256": hashlib.sha256(env.read_bytes()).hexdigest(),
        },
    ]
    assert found["model_environment"] == {
        "PATCHTST_SHADOW_ONLY": "0",
        "QSC_CANARY_MODEL": "patchtst",
        "QSC_MODEL_WEIGHTS": CANARY_TEXT,
    }
    assert "hunter2" not in repr(found)


def test_unit_expected_config_failures(tmp_path: Path):
    env = tmp_path / "ai-engine.env"
    files = f"EnvironmentFiles={env} (ignore_errors=no)\n"
    with pytest.raises(ec.EngineConfigError, match="is missing; systemd would refuse to start"):
        ec.unit_expected_config(FakeSystemctl(files), UNIT, BASELINE)
    env.write_bytes(b"QSC_CANARY_MODEL=\xff\n")
    with pytest.raises(ec.EngineConfigError, match="is not UTF-8"):
        ec.unit_expected_config(FakeSystemctl(files), UNIT, BASELINE)
    env.write_bytes(b"QSC_CANARY_MODEL=xgb\r\n")
    with pytest.raises(ec.EngineConfigError, match=f"environment file {env}: line 1: carriage"):
        ec.unit_expected_config(FakeSystemctl(files), UNIT, BASELINE)
    env.unlink()
    env.mkdir()
    with pytest.raises(ec.EngineConfigError, match="cannot read the environment file"):
        ec.unit_expected_config(FakeSystemctl(files), UNIT, BASELINE)
    failing = FakeSystemctl("", rc=1, stderr="Failed to connect to bus")
    with pytest.raises(ec.EngineConfigError, match=r"failed \(rc 1\): Failed to connect to bus"):
        ec.unit_expected_config(failing, UNIT, BASELINE)
    never = FakeSystemctl("")
    with pytest.raises(ec.EngineConfigError, match="not a valid systemd unit name"):
        ec.unit_expected_config(never, "engine; rm -rf /", BASELINE)
    assert never.calls == []


# --------------------------------------------------------------------------- differences


def test_every_mismatch_is_named():
    files = {"QSC_MODEL_WEIGHTS": CANARY_TEXT, "QSC_CANARY_MODEL": "patchtst"}
    want = expected(**files)
    # The engine still runs the baseline (the files were changed but not started).
    assert ec.config_differences(engine_startup({}), want) == [
        "voting xgb: 0.25 != 0.28125",
        "voting lgbm: 0.25 != 0.28125",
        "voting nhits: 0.3 != 0.3375",
        "voting patchtst: 0.2 != 0.1",
        "canary: the files set patchtst, no [CANARY] line",
    ]
    # Rolled back files, but the engine still runs the canary.
    assert ec.config_differences(engine_startup(files), expected()) == [
        "voting xgb: 0.28125 != 0.25",
        "voting lgbm: 0.28125 != 0.25",
        "voting nhits: 0.3375 != 0.3",
        "voting patchtst: 0.1 != 0.2",
        "canary: none in the files, the engine logged {'model': 'patchtst', 'weight': 0.1, "
        "'weights': {'xgb': 0.28125, 'lgbm': 0.28125, 'nhits': 0.3375, 'patchtst': 0.1}}",
    ]
    shadow = engine_startup({"PATCHTST_SHADOW_ONLY": "true"})
    assert ec.config_differences(shadow, expected()) == [
        "voting patchtst: missing",
        "shadow patchtst: unexpected",
    ]
    assert ec.config_differences({}, expected()) == [
        "voting cannot compare None with {'xgb': 0.25, 'lgbm': 0.25, 'nhits': 0.3, "
        "'patchtst': 0.2}: both must be mappings",
        "shadow cannot compare None with {}: both must be mappings",
    ]
    assert ec.config_differences(None, expected()) == ["the start-up report is not a mapping: None"]


def test_canary_mismatches_are_named():
    want = expected(QSC_MODEL_WEIGHTS=CANARY_TEXT, QSC_CANARY_MODEL="patchtst")
    startup = engine_startup({"QSC_MODEL_WEIGHTS": CANARY_TEXT, "QSC_CANARY_MODEL": "patchtst"})
    assert ec.config_differences(startup, want) == []
    # Within the journal's precision, not beyond.
    close = {**startup, "canary": {**startup["canary"], "weight": 0.1000009}}
    assert ec.config_differences(close, want) == []
    wrong = {
        **startup,
        "canary": {"model": "xgb", "weight": 0.2, "weights": {**CANARY, "xgb": 0.3}},
    }
    assert ec.config_differences(wrong, want) == [
        "canary: the engine runs 'xgb', the files set patchtst",
        "canary weight: 0.2 != 0.1",
        "canary weights xgb: 0.3 != 0.28125",
    ]
    malformed = {**startup, "canary": {"model": "patchtst"}}
    assert ec.config_differences(malformed, want) == ["canary: malformed {'model': 'patchtst'}"]
    not_a_number = {**startup, "canary": {**startup["canary"], "weight": True}}
    assert ec.config_differences(not_a_number, want) == ["canary weight: True != 0.1"]
