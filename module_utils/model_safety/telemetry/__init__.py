"""Telemetry: the engine's prediction events, read from the Redis stream and measured."""
