"""scripts/check_module_docs.py (run by `make lint`): the real checkout passes, and a copy with
one documentation defect of each kind per file fails, naming every one of them.

The check runs the real tools (validate-modules from ansible-core's ansible_test, ansible-doc)
locally: no root, no lab, no network."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.checkout_copy import copy_checkout, edit

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "scripts" / "check_module_docs.py"
# What the check reads from a checkout.
TREE = ("library", "module_utils", "doc_fragments", "filter_plugins", "pyproject.toml")


def run_check(root: Path) -> subprocess.CompletedProcess[str]:
    """The check over the checkout ``root``, as `make lint` runs it."""
    return subprocess.run(
        [sys.executable, str(CHECK), "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def break_tree(root: Path) -> None:
    """One defect per file, each a kind the check must catch."""
    library, filters = root / "library", root / "filter_plugins"
    # DOCUMENTATION that is not YAML: a plain value with ": " in it (the canary_probe defect).
    edit(library / "canary_probe.py", "\nshort_description: ", "\nshort_description: see: ")
    # O() and RV() pointing at an option and a return value the module does not have.
    edit(
        library / "engine_config.py",
        "\ndescription:\n",
        "\ndescription:\n  - Returns them in O(problems) and sets RV(changed).\n",
    )
    # An option in the argument_spec that the docs do not mention.
    edit(library / "git_build.py", "argument_spec={", 'argument_spec={"depth": {"type": "int"}, ')
    # References to another module's return value and to a module that do not exist.
    edit(
        library / "scoreboard.py",
        "\ndescription:\n",
        "\ndescription:\n  - As RV(ansible.legacy.quality_gate#module:verdicts), see"
        " M(ansible.legacy.no_such_module).\n",
    )
    # Code markup cut short by a parenthesis inside it.
    edit(library / "journal_proof.py", "\ndescription:\n", "\ndescription:\n  - C(f(x)) ok.\n")
    # A filter option that is not the function's parameter, and a filter without docs.
    edit(filters / "model_safety_canary_weights.yml", "\n    weight:\n", "\n    canary_weight:\n")
    (filters / "model_safety_status_table.yml").unlink()
    # A fragment that is not YAML, used by no module.
    (root / "doc_fragments" / "unused.py").write_text(
        'class ModuleDocFragment:\n    DOCUMENTATION = "options:\\n  a: b: c"\n'
    )


@pytest.fixture(scope="module")
def broken_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, list[str]]:
    """The check's exit status and problem lines over a broken copy of the checkout."""
    root = copy_checkout(tmp_path_factory.mktemp("checkout"), TREE)
    break_tree(root)
    result = run_check(root)
    return result.returncode, result.stdout.splitlines()


def reported(lines: list[str], path: str, code: str, text: str = "") -> bool:
    """True when a problem of ``path`` with ``code`` (and ``text`` in it) is reported."""
    return any(
        line.startswith(f"{path}:") and f": {code}: " in line and text in line for line in lines
    )


def test_the_checkout_passes():
    result = run_check(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.rstrip().endswith(": ok")


def test_make_lint_runs_the_check():
    dry_run = subprocess.run(
        ["make", "-n", "lint"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert "scripts/check_module_docs.py" in dry_run.stdout


def test_broken_docs_fail_the_check(broken_report):
    status, lines = broken_report
    assert status == 1, lines


def test_documentation_that_is_not_yaml(broken_report):
    _, lines = broken_report
    assert reported(lines, "library/canary_probe.py", "documentation-syntax-error")
    assert reported(lines, "library/canary_probe.py", "ansible-doc", "mapping values")


def test_references_to_missing_options_and_return_values(broken_report):
    _, lines = broken_report
    assert reported(lines, "library/engine_config.py", "invalid-documentation-markup", "problems")
    assert reported(lines, "library/engine_config.py", "invalid-documentation-markup", "changed")


def test_option_missing_from_the_docs(broken_report):
    _, lines = broken_report
    assert reported(lines, "library/git_build.py", "undocumented-parameter", "depth")


def test_references_to_other_plugins(broken_report):
    _, lines = broken_report
    path, code = "library/scoreboard.py", "invalid-documentation-markup"
    assert reported(lines, path, code, "quality_gate has no return value verdicts")
    assert reported(lines, path, code, "no module no_such_module")


def test_markup_cut_short(broken_report):
    _, lines = broken_report
    assert reported(lines, "library/journal_proof.py", "invalid-documentation-markup", "C(f(x)")


def test_filter_docs(broken_report):
    _, lines = broken_report
    doc = "filter_plugins/model_safety_canary_weights.yml"
    assert reported(lines, doc, "undocumented-parameter", "weight")
    assert reported(lines, doc, "nonexistent-parameter-documented", "canary_weight")
    assert reported(lines, "filter_plugins/status_table.py", "missing-documentation")


def test_fragment_that_is_not_yaml(broken_report):
    _, lines = broken_report
    assert reported(lines, "doc_fragments/unused.py", "documentation-syntax-error")


def test_only_the_defects_are_reported(broken_report):
    _, lines = broken_report
    broken = {
        "library/canary_probe.py",
        "library/engine_config.py",
        "library/git_build.py",
        "library/scoreboard.py",
        "library/journal_proof.py",
        "filter_plugins/model_safety_canary_weights.yml",
        "filter_plugins/status_table.py",
        "doc_fragments/unused.py",
    }
    assert {line.split(":", 1)[0] for line in lines} == broken
