"""The ``--json`` output of every ``model-safety`` command that prints a structured result
validates against its JSON Schema in docs/schemas/ (draft 2020-12): real outputs of the real
CLI against a real redis-server (tests.redis_server) and a real SQLite trade log, passing and
failing ones. The schemas are the stable contract of ``--json`` (DESIGN.md "Contract")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from model_safety import cli
from tests.integration.test_gate_cli import add, engine_payloads
from tests.unit.test_damage_cli import SINCE, trade_log
from tests.unit.test_damage_cli import fill as fill_priced
from tests.unit.test_dataset import candle_rows, make_db, walk

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def schema(command: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{command}.schema.json").read_text(encoding="utf-8"))


def json_of(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    """The exit code and the one JSON object ``model-safety ARGV --json`` printed."""
    code = cli.main([*argv, "--json"])
    out, _ = capsys.readouterr()
    assert out.count("\n") == 1, out
    return code, json.loads(out)


@pytest.fixture
def outputs(capsys, tmp_path, redis_server, redis_client, redis_stream) -> list[tuple[str, Any]]:
    """(command, --json output) of each command, passing and failing, on engine events."""
    add(redis_client, redis_stream, engine_payloads(300))
    window = ("--redis-url", redis_server.url, "--stream", redis_stream, "--no-report")
    missing = ("--redis-url", redis_server.url, "--stream", "test:none", "--no-report")
    runs = [
        ("gate", ("gate", *window)),
        ("gate", ("gate", "--model", "patchtst", *window)),
        ("gate", ("gate", "--mode", "collection", *missing)),
        ("gate", ("gate", "--count", "0")),
        ("scoreboard", ("scoreboard", *window)),
        ("scoreboard", ("scoreboard", *missing)),
        ("feature-sanity", ("feature-sanity", *window)),
        ("feature-sanity", ("feature-sanity", *missing)),
        ("shadow-report", ("shadow-report", "--model", "patchtst", *window)),
        ("shadow-report", ("shadow-report", "--model", "patchtst", *missing)),
        ("compare", ("compare", "--model", "patchtst", "--horizon", "5", *window)),
        ("compare", ("compare", "--model", "patchtst", *missing)),
        ("version", ("version",)),
        # The monitor's stream is tested line by line in test_monitor_json; here its refusal.
        ("monitor", ("monitor", "--model", "Not-A-Model", "--state-dir", "/nonexistent/state")),
    ]
    reference = str(tmp_path / "reference.json")
    runs += [
        ("feature-reference", ("feature-reference", "--out", reference, *window[:-1])),
        ("feature-reference", ("feature-reference", "--out", reference, *missing[:-1])),
    ]
    results = [(command, json_of(capsys, *argv)[1]) for command, argv in runs]
    priced = f"{redis_stream}:priced"
    fill_priced(redis_client, priced, 30)
    damage = ("damage", "--model", "patchtst", "--db", trade_log(tmp_path))
    server = ("--redis-url", redis_server.url, "--stream", priced, "--no-report")
    results += [
        ("damage", json_of(capsys, *damage, "--since", SINCE, *server)[1]),
        ("damage", json_of(capsys, *damage, *server)[1]),
    ]
    redis_client.delete(priced)
    rows = candle_rows("BTCUSDT", walk(40, 1))
    db = make_db(tmp_path / "ohlcv.db", rows)
    dataset = ("build-patchtst-dataset", "--db", db, "--lookback", "8", "--horizon", "1h")
    results += [
        ("build-patchtst-dataset", json_of(capsys, *dataset, "--dry-run")[1]),
        ("build-patchtst-dataset", json_of(capsys, *dataset, "--lookback", "100", "--dry-run")[1]),
    ]
    return results


SCHEMA_COMMANDS = sorted(path.name.removesuffix(".schema.json") for path in SCHEMA_DIR.iterdir())


def test_every_structured_command_has_a_schema() -> None:
    subcommands = cli.build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    with_json = sorted(
        name
        for name, parser in subcommands.items()
        if any("--json" in action.option_strings for action in parser._actions)
    )
    assert with_json == SCHEMA_COMMANDS


@pytest.mark.parametrize("command", SCHEMA_COMMANDS)
def test_schemas_are_valid_draft_2020_12(command: str) -> None:
    document = schema(command)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(document)


def test_the_gate_schema_requires_the_design_contract_keys() -> None:
    document = schema("gate")
    assert set(document["required"]) >= {
        "verdict", "mode", "event_count", "malformed", "blockers", "models"
    }  # fmt: skip
    assert set(document["$defs"]["model"]["required"]) >= {
        "passed", "shadow", "n", "actions", "conf_std", "p10", "p90", "agreement",
        "hard_disagree", "blockers",
    }  # fmt: skip


def test_real_outputs_validate_and_changed_contracts_do_not(outputs) -> None:
    assert {command for command, _ in outputs} == set(SCHEMA_COMMANDS)
    for command, output in outputs:
        jsonschema.Draft202012Validator(schema(command)).validate(output)
    gate = next(output for command, output in outputs if command == "gate")
    without_p90 = {k: v for k, v in gate["models"]["xgb"].items() if k != "p90"}
    for broken in (
        {**gate, "verdict": "MAYBE"},
        {**gate, "models": {**gate["models"], "xgb": without_p90}},
        {k: v for k, v in gate.items() if k != "blockers"},
    ):
        assert not jsonschema.Draft202012Validator(schema("gate")).is_valid(broken)
    compare = next(output for command, output in outputs if command == "compare")
    # the gate's per-model figures of the same events, for the comparison's page
    assert set(compare["window_models"]) == set(compare["models"])
    assert compare["window_models"]["patchtst"]["confidence_histogram"]["counts"]
    assert not jsonschema.Draft202012Validator(schema("compare")).is_valid(
        {k: v for k, v in compare.items() if k != "decided"}
    )
