"""The HTML reports (judgement.html_report): page content and escaping, the files write_reports
adds with ``html`` and the CLI's ``--html``. The page in a browser: test_html_report_browser.py."""

from __future__ import annotations

import os
import re
import stat
from datetime import UTC, datetime
from typing import Any

import pytest

from model_safety import cli
from model_safety.judgement import run as run_module
from model_safety.judgement.html_report import render_html
from model_safety.judgement.reports import HTML_KINDS, write_reports

from .test_reports import gate_result

NOW = datetime(2026, 1, 10, 12, 0, 5, tzinfo=UTC)
HOSTILE = "<script>alert('x')</script>&"


def scoreboard_result() -> dict[str, Any]:
    gate = gate_result()
    models = {
        name: dict(row, status="GO" if row["passed"] else "NO-GO", median=0.55, reasons=[])
        for name, row in gate["models"].items()
    }
    return {"mode": "canary", "event_count": 500, "blockers": [], "models": models,
            "counts": {"GO": 1, "WAIT": 0, "NO-GO": 1}}  # fmt: skip


def shadow_result() -> dict[str, Any]:
    metrics = dict(gate_result()["models"]["xgb"], median=0.58)
    return {"model": "xgb", "status": "READY", "metrics": metrics, "blockers": [],
            "event_count": 500, "thresholds": {"max_action_share": 0.7}}  # fmt: skip


def svg_count(page: str) -> int:
    return len(re.findall(r"<svg[ >]", page))


# --------------------------------------------------------------------------- the page


def test_gate_page_has_the_verdict_blockers_three_charts_and_the_table() -> None:
    page = render_html(gate_result(), "quality_gate", NOW)
    assert page.startswith("<!DOCTYPE html>")
    assert '<p id="verdict" class="verdict fail">FAIL</p>' in page
    assert "<li>patchtst: action collapse: BUY 93.0% &gt; 70.0%</li>" in page
    for section in ("actions", "confidence", "agreement"):
        assert f'<section class="chart" id="{section}">' in page
    assert svg_count(page) == 3
    assert "<td>patchtst</td><td>500</td><td>93.0%</td>" in page
    assert "2026-01-10T12:00:05Z" in page
    # Self-contained: nothing fetched, nothing run.
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page)
    assert "<?xml" not in page  # the SVGs are inlined as elements, not documents


def test_scoreboard_and_shadow_pages_render_their_models() -> None:
    board = render_html(scoreboard_result(), "scoreboard", NOW)
    assert '<p id="verdict" class="verdict other">GO 1, WAIT 0, NO-GO 1</p>' in board
    assert "<td>NO-GO</td>" in board and svg_count(board) == 3
    shadow = render_html(shadow_result(), "shadow_report", NOW)
    assert "<title>Shadow report: xgb</title>" in shadow
    assert '<p id="verdict" class="verdict pass">READY</p>' in shadow
    assert "<td>xgb</td>" in shadow and svg_count(shadow) == 3


def test_every_string_of_the_result_is_escaped() -> None:
    result = gate_result(blockers=[HOSTILE], error=HOSTILE, verdict=HOSTILE, model=HOSTILE)
    result["models"] = {HOSTILE: result["models"]["xgb"]}
    page = render_html(result, "quality_gate", NOW)
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;" in page
    assert "<script" not in page.lower()


def test_a_model_name_is_no_mathtext() -> None:
    result = gate_result()
    result["models"] = {r"$\frac{$": result["models"]["xgb"]}  # malformed TeX: would raise
    assert svg_count(render_html(result, "quality_gate", NOW)) == 3


def test_a_result_without_models_or_percentiles_still_renders() -> None:
    empty = render_html({"verdict": "FAIL", "error": "redis down"}, "quality_gate", NOW)
    assert "No model figures in this result." in empty and svg_count(empty) == 0
    result = gate_result()
    result["models"]["xgb"].update(p10=None, p90=None, agreement=None)
    assert svg_count(render_html(result, "quality_gate", NOW)) == 3


def test_other_kinds_have_no_page() -> None:
    with pytest.raises(ValueError, match="no HTML report for 'feature_sanity'"):
        render_html({}, "feature_sanity", NOW)


# --------------------------------------------------------------------------- files, CLI


def test_write_reports_adds_the_page_beside_the_markdown(tmp_path) -> None:
    paths = write_reports(gate_result(), "quality_gate", str(tmp_path), NOW, html=True)
    assert paths["html"] == str(tmp_path / "quality_gate_20260110T120005Z.html")
    assert stat.S_IMODE(os.stat(paths["html"]).st_mode) == 0o640
    with open(paths["html"], encoding="utf-8") as handle:
        assert '<p id="verdict" class="verdict fail">FAIL</p>' in handle.read()
    assert "html" not in write_reports(gate_result(), "quality_gate", str(tmp_path), NOW)


def test_write_reports_refuses_html_for_another_kind_before_writing(tmp_path) -> None:
    assert "feature_sanity" not in HTML_KINDS
    with pytest.raises(ValueError):
        write_reports({"model": "xgb"}, "feature_sanity", str(tmp_path / "r"), NOW, html=True)
    assert not (tmp_path / "r").exists()


def test_cli_html_flag_writes_and_names_the_page(capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(run_module, "run_gate", lambda *a, **k: gate_result())
    code = cli.main(["gate", "--html", "--report-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 2  # the result's FAIL, unchanged by the page
    (page,) = tmp_path.glob("quality_gate_*.html")
    assert f"html report: {page}" in out
    assert not list(tmp_path.glob("*.html"))[1:]


def test_cli_html_flag_on_a_kind_without_a_page_warns(capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(run_module, "run_feature_sanity", lambda *a, **k: {"exit_code": 0})
    assert cli.main(["feature-sanity", "--html", "--report-dir", str(tmp_path)]) == 0
    assert "no HTML report for feature_sanity yet" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.html")) and list(tmp_path.glob("*.md"))
