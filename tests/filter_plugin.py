"""The filters of a plugin under filter_plugins/, loaded from its file as Ansible loads it
(filter_plugins/ is not a package)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

FILTER_PLUGINS = Path(__file__).resolve().parents[1] / "filter_plugins"


def filters(name: str) -> dict[str, Callable[..., Any]]:
    """``FilterModule().filters()`` of ``filter_plugins/<name>.py``."""
    spec = importlib.util.spec_from_file_location(f"{name}_plugin", FILTER_PLUGINS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FilterModule().filters()
