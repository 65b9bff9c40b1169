"""The Markdown section of a paired comparison (:func:`.compare.compare`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .markdown import bullets, code, header, num, pct, plain, source_lines, table


def _interval(stats: Mapping[str, Any]) -> str:
    bounds = stats.get("wilson95")
    return f"{pct(bounds[0])} - {pct(bounds[1])}" if bounds else "-"


def p_value(value: Any) -> str:
    """A p-value with 3 significant digits, small ones in exponent form (4.9e-05)."""
    return "-" if value is None else f"{value:.3g}"


def _accuracy_row(name: str, stats: Mapping[str, Any]) -> list[Any]:
    return [
        name,
        stats["calls"],
        stats["right"],
        pct(stats["accuracy"]),
        _interval(stats),
        stats["hold"],
        stats["flat"],
        stats["no_outcome"],
        stats["late_outcome"],
    ]


def _calibration_rows(name: str, stats: Mapping[str, Any]) -> list[list[Any]]:
    return [
        [
            name,
            f"{plain(b['bucket'][0])}-{plain(b['bucket'][1])}",
            b["calls"],
            pct(b["accuracy"]),
            num(b["mean_confidence"], 2),
        ]
        for b in stats["calibration"]
        if b["calls"]
    ]


PAIRED_TEST_HEADERS = (
    "against",
    "paired calls",
    "canary only right (b)",
    "other only right (c)",
    "p two-sided",
    "p canary worse",
    "effect (b-c)/(b+c)",
    "accuracy difference",
    "canary worse",
)
"""The paired-test table's columns, in the Markdown and the HTML page alike."""


def paired_test_rows(comparisons: Any) -> list[list[Any]]:
    """One row of :data:`PAIRED_TEST_HEADERS` per paired test of the canary."""
    return [
        [
            c["other"],
            c["paired_calls"],
            c["b"],
            c["c"],
            p_value(c["p_two_sided"]),
            p_value(c["p_canary_worse"]),
            num(c["effect_size"], 3),
            pct(c["accuracy_difference"]),
            num(c["canary_worse"]),
        ]
        for c in comparisons or []
    ]


def compare_section(result: Mapping[str, Any]) -> list[str]:
    """Markdown lines: what was compared, accuracy per model, the paired tests, the decisions
    the canary changed and the calibration tables."""
    model = result["model"]
    title = f"## Paired comparison: {code(model)} against the baseline"
    if "events" not in result:  # nothing was read or compared: the reason alone
        why = result.get("reason") or result.get("error") or "nothing compared"
        return [title, "", f"**Not decided**: {why}.", ""]
    lines = [
        title,
        "",
        f"Horizon {plain(result['horizon_s'])} s, later price at most "
        f"{plain(result['max_lag_s'])} s past it; {result['events']} events, "
        f"{result['events_with_price']} with a price, {result['events_with_outcome']} with an "
        f"outcome (up {result['moves']['up']}, down {result['moves']['down']}, "
        f"flat {result['moves']['flat']}), {result['late_outcomes']} with a late outcome "
        f"(no judgement: a stall); {result['symbols']} symbols.",
        "",
    ]
    if not result["decided"]:
        return [*lines, f"**Not decided**: {result['reason']}.", ""]
    rows = [_accuracy_row(name, stats) for name, stats in result["models"].items()]
    rows.append(_accuracy_row("ensemble (published)", result["ensemble"]))
    rows.append(_accuracy_row(f"ensemble without {model}", result["ensemble_without_canary"]))
    lines += [
        "### Directional accuracy",
        "",
        *table(
            [
                "model",
                "calls",
                "right",
                "accuracy",
                "95% interval",
                "HOLD",
                "flat move",
                "no outcome",
                "late outcome",
            ],
            rows,
        ),
        "",
        f"### Paired tests (McNemar, canary worse when one-sided p < {plain(result['alpha'])})",
        "",
        *table(PAIRED_TEST_HEADERS, paired_test_rows(result["comparisons"])),
        "",
    ]
    changes = result["counterfactual"]
    with_canary, without = changes["with_canary"], changes["without_canary"]
    lines += [
        f"### Decisions {code(model)} changed",
        "",
        *bullets(
            [
                f"changed: {changes['changed']} of {result['events']} events "
                f"({pct(changes['changed_share'])}), "
                f"{changes['changed_with_outcome']} with an outcome",
                f"with {model}: {with_canary['right']} right of {with_canary['calls']} calls "
                f"({pct(with_canary['accuracy'])})",
                f"without {model}: {without['right']} right of {without['calls']} calls "
                f"({pct(without['accuracy'])})",
            ]
        ),
        "",
        "### Calibration (accuracy by confidence)",
        "",
    ]
    calibration = [
        row for name, stats in result["models"].items() for row in _calibration_rows(name, stats)
    ]
    calibration += _calibration_rows("ensemble (published)", result["ensemble"])
    lines += [
        *table(["model", "confidence", "calls", "accuracy", "mean confidence"], calibration),
        "",
    ]
    return lines


def compare_summary(result: Mapping[str, Any], loss: Mapping[str, Any] | None) -> str:
    """The comparison in one line: the canary's accuracy and whether it loses significantly
    against the ensemble without it by ``loss`` (its :func:`.compare_loss.loss_check`, None
    only for a result with an error); or why nothing was judged."""
    model = result.get("model")
    if result.get("error") or loss is None:
        return f"{model}: not compared: {result.get('error')}"
    if not result.get("decided"):
        return f"{model}: not decided: {result.get('reason')}"
    stats = result["models"][model]
    line = (
        f"{model}: {pct(stats['accuracy'])} right of {stats['calls']} calls "
        f"({_interval(stats)}), horizon {plain(result['horizon_s'])} s"
    )
    if not loss["decided"]:
        return f"{line}; against {loss['against']}: not decided ({loss['reason']})"
    verdict = "significantly worse" if loss["significant_loss"] else "not significantly worse"
    return (
        f"{line}; against {loss['against']}: wrong in {loss['c']} of {loss['disagreements']} "
        f"disagreements ({pct(loss['loss_share'])}, allowed {pct(loss['max_loss_share'])}), "
        f"p {p_value(loss['p_loss'])}: {verdict}"
    )


def _activation_line(result: Mapping[str, Any]) -> list[str]:
    """Where a ``--since-activation`` window began: the record it was read from."""
    activation = result.get("activation")
    if not isinstance(activation, Mapping):
        return []
    record = activation.get("record") or {}
    kind = record.get("action") or record.get("event") or "activation"
    return [
        f"- Since activation: {code(activation.get('start'))}, the {kind} record of "
        f"{code(result.get('model'))} in {code(activation.get('log'))}"
    ]


def render_compare(result: Mapping[str, Any], now: datetime) -> str:
    """The report of ``model-safety compare`` / canary_compare: what was read, then
    :func:`compare_section` (or the error that kept it from being compared)."""
    lines = header(result, f"Comparison: {result.get('model')}", now)
    lines += [*source_lines(result), *_activation_line(result)]
    if result.get("error") or "events" not in result:
        return "\n".join([*lines, f"- Error: {result.get('error') or 'nothing compared'}", ""])
    lines += ["", *compare_section(result)]
    return "\n".join(lines).rstrip() + "\n"
