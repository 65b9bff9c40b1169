"""Judgement: the gate, the scoreboard, the shadow and promotion checks, their thresholds and
reports."""
