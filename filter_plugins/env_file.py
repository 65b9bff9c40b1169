"""Filters ``qsc_env_render``, ``qsc_env_values`` and ``qsc_env_changed``: the engine's
EnvironmentFile changed in place, every other line kept byte for byte.

The logic lives in ``model_safety.envfile`` (the project is installed into the controller's
virtualenv, where filter plugins run); this file only exposes it and turns its
``EnvFileError`` into ``AnsibleFilterError`` with the same message (which never shows a value).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

from model_safety import envfile


def qsc_env_render(text: str, changes: Mapping[str, str | None]) -> str:
    """``{{ current_text | qsc_env_render({"SIM_XGB": "constant", "OLD_KEY": None}) }}`` -> the
    file with those keys changed (None removes a key, new keys are appended at the end)."""
    try:
        return envfile.render_env(text, changes)
    except envfile.EnvFileError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def qsc_env_values(text: str) -> dict[str, str]:
    """``{{ current_text | qsc_env_values }}`` -> ``{KEY: value}`` of the file, in file order."""
    try:
        return envfile.env_values(text)
    except envfile.EnvFileError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def qsc_env_changed(text: str, changes: Mapping[str, str | None]) -> dict[str, Any]:
    """``{{ current_text | qsc_env_changed(changes) }}`` -> ``{KEY: {"before": .., "after": ..}}``
    for the keys whose value would really change (secret-looking keys shown as ``<hidden>``)."""
    try:
        return envfile.changed_keys(text, changes)
    except envfile.EnvFileError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    """The environment file filters."""

    def filters(self) -> dict:
        """Map filter names to functions."""
        return {
            "qsc_env_render": qsc_env_render,
            "qsc_env_values": qsc_env_values,
            "qsc_env_changed": qsc_env_changed,
        }
