"""The Markdown section of a paired comparison (:func:`.compare.compare`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .markdown import bullets, code, num, pct, plain, table


def _interval(stats: Mapping[str, Any]) -> str:
    bounds = stats.get("wilson95")
    return f"{pct(bounds[0])} - {pct(bounds[1])}" if bounds else "-"


def _p(value: Any) -> str:
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


def compare_section(result: Mapping[str, Any]) -> list[str]:
    """Markdown lines: what was compared, accuracy per model, the paired tests, the decisions
    the canary changed and the calibration tables."""
    model = result["model"]
    lines = [
        f"## Paired comparison: {code(model)} against the baseline",
        "",
        f"Horizon {plain(result['horizon_s'])} s; {result['events']} events, "
        f"{result['events_with_price']} with a price, {result['events_with_outcome']} with an "
        f"outcome (up {result['moves']['up']}, down {result['moves']['down']}, "
        f"flat {result['moves']['flat']}); {result['symbols']} symbols.",
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
            ],
            rows,
        ),
        "",
        f"### Paired tests (McNemar, canary worse when one-sided p < {plain(result['alpha'])})",
        "",
        *table(
            [
                "against",
                "paired calls",
                "canary only right (b)",
                "other only right (c)",
                "p two-sided",
                "p canary worse",
                "effect (b-c)/(b+c)",
                "accuracy difference",
                "canary worse",
            ],
            [
                [
                    c["other"],
                    c["paired_calls"],
                    c["b"],
                    c["c"],
                    _p(c["p_two_sided"]),
                    _p(c["p_canary_worse"]),
                    num(c["effect_size"], 3),
                    pct(c["accuracy_difference"]),
                    num(c["canary_worse"]),
                ]
                for c in result["comparisons"]
            ],
        ),
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
