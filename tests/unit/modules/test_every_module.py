"""Every module of library/ has its tests here, named after it (test_<module>.py), and loads
the way the harness runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.module_harness import LIBRARY, load

MODULES = sorted(path.stem for path in LIBRARY.glob("*.py"))


def test_every_module_has_its_test_file() -> None:
    tested = {path.stem.removeprefix("test_") for path in Path(__file__).parent.glob("test_*.py")}
    assert [module for module in MODULES if module not in tested] == []


@pytest.mark.parametrize("module", MODULES)
def test_the_module_loads_with_a_main(module) -> None:
    assert callable(load(module).main)
