"""The ``compare`` report kind (judgement.reports.write_reports with compare_report.render_compare):
the Markdown and JSON files of a comparison, of one since an activation, and of an error."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from model_safety.judgement.compare import compare
from model_safety.judgement.reports import KINDS, render_markdown, write_reports
from model_safety.telemetry.metrics import window_models
from tests.unit.test_compare import WEIGHTS, rising

NOW = datetime(2026, 1, 10, 13, 0, 0, tzinfo=UTC)
WRONG_CANARY = {"xgb": ("BUY", 0.7), "lgbm": ("BUY", 0.6), "patchtst": ("SELL", 0.9)}


def compared() -> dict:
    """A comparison as run_compare returns it (with the window's per-model figures)."""
    from tests.unit.test_compare import window

    events = window(rising(30, 60, WRONG_CANARY))
    result = compare(events, "patchtst", WEIGHTS, horizon_s=60)
    result["window_models"] = window_models(events)
    result["source"] = {"redis": "redis://127.0.0.1:6379/0", "stream": "s", "count": None,
                        "after": "2026-01-10T12:00:00Z"}  # fmt: skip
    return result


def test_compare_is_a_report_kind_written_as_markdown_and_json(tmp_path) -> None:
    assert "compare" in KINDS
    result = compared()
    paths = write_reports(result, "compare", str(tmp_path / "reports"), now=NOW)
    assert paths == {
        "markdown": str(tmp_path / "reports" / "compare_20260110T130000Z.md"),
        "json": str(tmp_path / "reports" / "compare_20260110T130000Z.json"),
    }
    text = Path(paths["markdown"]).read_text()
    assert text.startswith("# Comparison: patchtst\n\nGenerated 2026-01-10T13:00:00Z\n\n")
    assert "- Source: `redis://127.0.0.1:6379/0`, stream `s`, after `2026-01-10T12:00:00Z`" in text
    assert "## Paired comparison: `patchtst` against the baseline" in text
    assert "| ensemble without patchtst | 29 | 0 | 29 |" in text
    assert (
        json.loads(Path(paths["json"]).read_text())["canary_worse_than"]
        == result["canary_worse_than"]
    )


def test_the_report_names_the_activation_it_started_at() -> None:
    result = compared()
    result["activation"] = {
        "start": "2026-01-10T12:00:00Z",
        "log": "/var/log/quantum/qsc_canary.jsonl",
        "record": {"action": "canary_activated", "ts": "2026-01-10T12:00:03.000Z"},
    }
    text = render_markdown(result, "compare", NOW)
    assert (
        "- Since activation: `2026-01-10T12:00:00Z`, the canary_activated record of `patchtst` "
        "in `/var/log/quantum/qsc_canary.jsonl`"
    ) in text


def test_an_error_is_the_report() -> None:
    result = {"error": "cannot connect", "exit_code": 2, "model": "patchtst", "decided": False}
    text = render_markdown(result, "compare", NOW)
    assert text.endswith("- Error: cannot connect\n")
    assert "Paired comparison" not in text


def test_the_summary_line_of_each_case() -> None:
    from model_safety.judgement.compare_loss import loss_check
    from model_safety.judgement.compare_report import compare_summary
    from tests.unit.test_compare import window

    result = compared()  # the canary wrong on every one of 29 events, the others right
    loss = loss_check(result, "voting", 0.6, 0.05)
    assert compare_summary(result, loss) == (
        "patchtst: 0.0% right of 29 calls (0.0% - 11.7%), horizon 60 s; against the ensemble "
        "without patchtst: wrong in 29 of 29 disagreements (100.0%, allowed 60.0%), p 3.68e-07: "
        "significantly worse"
    )
    few = compare(window(rising(4, 60, WRONG_CANARY)), "patchtst", WEIGHTS, horizon_s=60)
    assert compare_summary(few, loss_check(few, "voting", 0.6, 0.05)).endswith(
        "against the ensemble without patchtst: not decided (3 disagreements with the ensemble "
        "without patchtst, 6 needed before a loss can be significant at alpha 0.05)"
    )
    empty = compare(window([]), "patchtst", WEIGHTS, horizon_s=60)
    assert compare_summary(empty, loss_check(empty, "voting", 0.6, 0.05)) == (
        "patchtst: not decided: model patchtst is in no event"
    )
    error = {"model": "patchtst", "error": "Redis unreachable", "decided": False}
    assert compare_summary(error, None) == "patchtst: not compared: Redis unreachable"
