"""Weighted confidence voting over the voting (non-shadow, active) models."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .models import ACTIONS, Prediction

_TIE_TOLERANCE = 1e-12


@dataclass(frozen=True)
class Decision:
    """The ensemble decision for one event."""

    side: str
    confidence: float
    consensus_count: int
    total_models: int
    agreeing: tuple[str, ...]
    """Voting models whose action equals ``side``, in model order."""


def vote(
    predictions: Mapping[str, Prediction],
    weights: Mapping[str, float],
    voters: Sequence[str],
) -> Decision:
    """Combine the predictions of ``voters`` (in model order) into one decision.

    score[action] is the sum of weight * confidence over the active voters choosing that
    action; the side is the unique best score, HOLD on any tie (fail-safe) or when no voter
    produced a prediction. Shadow models must not be in ``voters``; inactive ones are skipped.
    """
    active = [m for m in voters if m in predictions and predictions[m].active]
    if not active:
        return Decision("HOLD", 0.0, 0, 0, ())
    scores = dict.fromkeys(ACTIONS, 0.0)
    for model in active:
        prediction = predictions[model]
        scores[prediction.action] += weights[model] * prediction.confidence
    best = max(scores.values())
    leaders = [a for a in ACTIONS if best - scores[a] <= _TIE_TOLERANCE]
    side = leaders[0] if len(leaders) == 1 else "HOLD"
    total_weight = sum(weights[m] for m in active)
    confidence = min(1.0, max(0.0, round(scores[side] / total_weight, 4)))
    agreeing = tuple(m for m in active if predictions[m].action == side)
    return Decision(side, confidence, len(agreeing), len(active), agreeing)


def counts_with_shadow(
    decision: Decision, predictions: Mapping[str, Prediction], shadow: frozenset[str]
) -> tuple[int, int]:
    """(consensus_count, total_models) with the active shadow models counted as voters.

    The SIM_SHADOW_LEAK fault: only these published counts lie; the decision itself (side,
    confidence, agreeing and so model_source) stays the vote of the real voters.
    """
    leaked = [p for m, p in predictions.items() if m in shadow and p.active]
    agreeing = sum(p.action == decision.side for p in leaked)
    return decision.consensus_count + agreeing, decision.total_models + len(leaked)


def model_source(decision: Decision) -> str:
    """Comma-separated voting models that agree with the side (the SQLite model_source)."""
    return ",".join(decision.agreeing)
