"""The HTML pages of ``compare`` and ``damage`` (judgement.html_report): the charts, the tables,
escaping, a result that was not decided, and ``--html`` on both commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from model_safety import cli
from model_safety.judgement import damage as damage_module
from model_safety.judgement import run as run_module
from model_safety.judgement.html_report import render_html
from model_safety.judgement.reports import HTML_KINDS

from .test_compare_reports import compared
from .test_damage import AGREES_BUY, DECISIVE_BUY, DECISIVE_SELL, make_db, report, row
from .test_html_report import HOSTILE, NOW, svg_count

ESCAPED = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;"


def damaged(tmp_path: Path) -> dict[str, Any]:
    rows = [row(0, DECISIVE_BUY), row(1, DECISIVE_SELL, symbol="ETHUSDT"), row(2, AGREES_BUY)]
    return report(make_db(tmp_path / "t.db", rows), horizon_s=60)


def test_compare_page_has_accuracy_with_intervals_paired_tests_and_calibration() -> None:
    result = compared()
    page = render_html(result, "compare", NOW)
    assert "<title>Comparison: patchtst</title>" in page
    assert '<p id="verdict" class="verdict other">DECIDED</p>' in page
    assert '<section class="chart" id="accuracy">' in page
    assert '<section class="chart" id="calibration">' in page
    # and the same events' per-model figures, as on the gate's page
    assert set(result["window_models"]) == set(result["models"])
    for section in ("actions", "confidence", "agreement"):
        assert f'<section class="chart" id="{section}">' in page
    assert "Confidence histogram" in page and "Agreement over time" in page
    assert svg_count(page) == 5
    older = {key: value for key, value in result.items() if key != "window_models"}
    assert svg_count(render_html(older, "compare", NOW)) == 2  # a result from before them
    other = result["comparisons"][0]
    assert f"<td>{other['other']}</td><td>{other['paired_calls']}</td>" in page
    assert f"{result['events']} events" in page
    assert "<script" not in page.lower()


def test_compare_page_not_decided_and_escaped() -> None:
    page = render_html({"model": HOSTILE, "events": 3, "decided": False, "reason": HOSTILE},
                       "compare", NOW)  # fmt: skip
    assert '<p id="verdict" class="verdict other">NOT DECIDED</p>' in page
    assert HOSTILE not in page and f"Not decided: {ESCAPED}." in page
    assert svg_count(page) == 0
    error = render_html({"model": "xgb", "error": "redis down"}, "compare", NOW)
    assert '<p id="verdict" class="verdict fail">ERROR</p>' in error


def test_compare_page_escapes_model_names_in_the_paired_table() -> None:
    result = compared()
    result["comparisons"][0]["other"] = HOSTILE
    result["models"] = {HOSTILE: result["models"]["patchtst"], **result["models"]}
    page = render_html(result, "compare", NOW)
    assert HOSTILE not in page and f"<td>{ESCAPED}</td>" in page


def test_damage_page_has_rows_and_returns_by_symbol_and_side(tmp_path: Path) -> None:
    result = damaged(tmp_path)
    page = render_html(result, "damage", NOW)
    assert "<title>Damage report: patchtst</title>" in page
    for section in ("participated-rows", "participated-returns", "decisive-rows",
                    "decisive-returns"):  # fmt: skip
        assert f'<section class="chart" id="{section}">' in page
    assert svg_count(page) == 4
    assert "<td>BTCUSDT</td><td>BUY</td><td>2</td>" in page  # took part: decisive + agreeing
    assert "<td>ETHUSDT</td><td>SELL</td><td>1</td>" in page
    assert "3 rows" in page
    assert page.count("<th>net sum %</th>") == 1  # the decided rows' table alone


def test_damage_page_without_rows_or_with_an_error(tmp_path: Path) -> None:
    empty = render_html(report(make_db(tmp_path / "e.db", [])), "damage", NOW)
    assert "NOT DECIDED" in empty and "Not decided yet:" in empty
    error = render_html({"model": "xgb", "error": HOSTILE}, "damage", NOW)
    assert HOSTILE not in error and f"Error: {ESCAPED}" in error
    assert '<p id="verdict" class="verdict fail">ERROR</p>' in error


def test_cli_html_on_compare_and_damage(capsys, monkeypatch, tmp_path: Path) -> None:
    assert {"compare", "damage"} <= set(HTML_KINDS)
    monkeypatch.setattr(run_module, "run_compare", lambda *a, **k: compared())
    cli.main(["compare", "--model", "patchtst", "--html", "--report-dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert "no HTML report" not in captured.err
    (page,) = tmp_path.glob("compare_*.html")
    assert f"html report: {page}" in captured.out
    damage_dir = tmp_path / "damage"
    result = damaged(tmp_path)
    monkeypatch.setattr(damage_module, "run_damage", lambda *a, **k: result)
    cli.main(["damage", "--model", "patchtst", "--since", "2026-01-10T11:59:00Z", "--html",
              "--report-dir", str(damage_dir)])  # fmt: skip
    captured = capsys.readouterr()
    assert "no HTML report" not in captured.err
    (page,) = damage_dir.glob("damage_*.html")
    assert f"html report: {page}" in captured.out
