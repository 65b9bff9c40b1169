"""The Grafana dashboard docs/grafana/model_safety_monitor.json against the monitor's node_exporter
textfile: every metric its PromQL names is one the textfile writes (read back from a real
textfile with prometheus_client's parser), and every family the textfile writes is on a panel."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from model_safety.monitor import store as monitor_io
from model_safety.monitor.report import prometheus_text
from tests.unit.test_monitor_store import monitor_states

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "model_safety_monitor.json"
# The series a histogram or summary family adds to its name.
FAMILY_SUFFIXES = ("_bucket", "_sum", "_count")
# PromQL words that are neither metrics nor functions (a function is followed by "(").
_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "atan2", "inf", "nan",
}  # fmt: skip
_STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
# Label matchers, range and subquery selectors, and the label lists of by/without/on/ignoring.
_NOT_METRICS_RE = re.compile(
    r"\{[^}]*\}|\[[^\]]*\]|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"
)
_IDENTIFIER_RE = re.compile(r"(?<![\w.$])([A-Za-z_:][\w:]*)\b(?!\s*\()")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    text = _NOT_METRICS_RE.sub(" ", _STRING_RE.sub('""', expr))
    return {name for name in _IDENTIFIER_RE.findall(text) if name.lower() not in _KEYWORDS}


def panel_queries(dashboard: dict[str, Any]) -> dict[str, list[str]]:
    """Each panel's title and its targets' PromQL."""
    return {
        panel["title"]: [target["expr"] for target in panel["targets"]]
        for panel in dashboard["panels"]
    }


def variable_queries(dashboard: dict[str, Any]) -> list[str]:
    """The PromQL inside the template variables' label_values(...) queries."""
    return [
        re.fullmatch(r"label_values\((.*),\s*\w+\)", variable["definition"]).group(1)
        for variable in dashboard["templating"]["list"]
        if variable["type"] == "query"
    ]


def written_samples(tmp_path: Path) -> dict[str, set[str]]:
    """Per family the monitor's textfile writes, the sample names it has, read back with
    prometheus_client from a textfile written by the monitor's own code."""
    states = monitor_states("patchtst", e1="rolled_back", e2="monitoring")
    path = monitor_io.write_textfile(
        str(tmp_path), "patchtst", prometheus_text("patchtst", states, 1.5)
    )
    families = text_string_to_metric_families(Path(path).read_text())
    return {family.name: {sample.name for sample in family.samples} for family in families}


def allowed_names(samples: dict[str, set[str]]) -> set[str]:
    return {name for names in samples.values() for name in names} | {
        family + suffix for family in samples for suffix in FAMILY_SUFFIXES
    }


def unknown_metrics(dashboard: dict[str, Any], samples: dict[str, set[str]]) -> set[str]:
    allowed = allowed_names(samples)
    exprs = [e for q in panel_queries(dashboard).values() for e in q] + variable_queries(dashboard)
    return {name for expr in exprs for name in metric_names(expr)} - allowed


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('qsc_monitor_status{host=~"$host",status="rolled_back"} == 1', {"qsc_monitor_status"}),
        (
            "sum by (host, model) (increase(qsc_monitor_checks_total[5m])) / on(host) group_left "
            "qsc_monitor_canary_weight_ratio offset 5m",
            {"qsc_monitor_checks_total", "qsc_monitor_canary_weight_ratio"},
        ),
        ("time() - max_over_time(a_b:c[$__rate_interval:1m])", {"a_b:c"}),
        ('label_replace(up, "x", "$1", "job", "(.*)") and bool 1', {"up"}),
        ("histogram_quantile(0.9, rate(lat_seconds_bucket[5m]))", {"lat_seconds_bucket"}),
    ],
)
def test_metric_names_reads_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_the_dashboard_is_importable(dashboard: dict[str, Any]) -> None:
    assert isinstance(dashboard["schemaVersion"], int)
    assert dashboard["title"] and dashboard["uid"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert {"type", "title", "gridPos", "datasource", "targets"} <= set(panel)
        assert panel["targets"] and all(t["expr"] and t["refId"] for t in panel["targets"])
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    assert {"model", "host"} <= set(variables)


def test_every_panel_metric_is_one_the_textfile_writes(
    dashboard: dict[str, Any], tmp_path: Path
) -> None:
    samples = written_samples(tmp_path)
    assert len(samples) == 6  # the monitor's families, read back whole
    assert unknown_metrics(dashboard, samples) == set()


def test_a_metric_the_textfile_does_not_write_is_caught(
    dashboard: dict[str, Any], tmp_path: Path
) -> None:
    renamed = json.loads(
        json.dumps(dashboard).replace("qsc_monitor_checks_total", "qsc_monitor_checks_count_total")
    )
    assert unknown_metrics(renamed, written_samples(tmp_path)) == {"qsc_monitor_checks_count_total"}


def test_every_family_the_textfile_writes_is_on_a_panel(
    dashboard: dict[str, Any], tmp_path: Path
) -> None:
    on_panels = {
        name
        for exprs in panel_queries(dashboard).values()
        for e in exprs
        for name in metric_names(e)
    }
    samples = written_samples(tmp_path)
    missing = {family for family, names in samples.items() if not names & on_panels}
    assert missing == set()
    # Every panel follows the $model selection: every family carries the model label.
    for title, exprs in panel_queries(dashboard).items():
        assert all('model=~"$model"' in expr for expr in exprs), title
