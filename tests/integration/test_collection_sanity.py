"""scripts/collection_sanity.py (run by `make lint`): ansible-test sanity itself over the
collection assembled from a checkout. A copy of the checkout with one defect of each of several
sanity tests fails, each finding named with its checkout path; the collection's ignore file has
one line per file and reason. The import test imports every module with ansible-core alone.

Real ansible-test, real virtual environments (cached under ~/.ansible/test), pip from the
package index; no root, no lab."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scripts.build_collection import SANITY_IGNORES, sanity_ignore_lines
from tests.checkout_copy import copy_checkout, edit

ROOT = Path(__file__).resolve().parents[2]
SANITY = ROOT / "scripts" / "collection_sanity.py"
# What `make collection` assembles the collection from.
TREE = (
    "library",
    "module_utils",
    "doc_fragments",
    "filter_plugins",
    "roles",
    "playbooks",
    "pyproject.toml",
    "README.md",
)


TESTS = [
    arg
    for test in ("validate-modules", "no-smart-quotes", "shebang", "yamllint", "import", "ignores")
    for arg in ("--test", test)
]


@pytest.fixture(scope="module")
def broken_sanity(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, list[str]]:
    """The script's exit status and finding lines over a broken copy of the checkout."""
    root = copy_checkout(tmp_path_factory.mktemp("checkout"), TREE)
    # An option the docs do not mention (validate-modules).
    edit(
        root / "library/git_build.py",
        "argument_spec={",
        'argument_spec={"depth": {"type": "int"}, ',
    )
    # A typographic quote in code (no-smart-quotes).
    edit(root / "module_utils/model_safety/utctime.py", '"""', '"""\u201cquoted\u201d ')
    # A module that is not run by /usr/bin/python (shebang).
    edit(root / "library/journal_proof.py", "#!/usr/bin/python", "#!/usr/bin/env python3")
    # A key given twice in a role's YAML (yamllint).
    edit(
        root / "roles/model_activation/defaults/main.yml",
        '\nmodel_activation_model: ""',
        '\nmodel_activation_model: ""\nmodel_activation_model: ""',
    )
    # A module that needs numpy to be imported at all (import).
    edit(
        root / "library/activation_lock.py",
        "from __future__ import annotations\n",
        "from __future__ import annotations\n\nimport numpy\n",
    )
    result = subprocess.run(
        # The tests the defects are for (make lint runs them all, pylint's 30 s included).
        [sys.executable, str(SANITY), "--root", str(root), *TESTS],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode != 2, result.stderr
    return result.returncode, result.stdout.splitlines()


def test_make_lint_runs_ansible_test_sanity():
    dry_run = subprocess.run(
        ["make", "-n", "lint"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert "scripts/collection_sanity.py" in dry_run.stdout


def test_defects_fail_with_checkout_paths(broken_sanity):
    status, lines = broken_sanity
    assert status == 1, lines
    assert any(
        line.startswith("library/git_build.py:") and "undocumented-parameter" in line
        for line in lines
    ), lines
    assert any(line.startswith("module_utils/model_safety/utctime.py:") for line in lines), lines
    assert any(
        line.startswith("library/journal_proof.py:") and "shebang" in line for line in lines
    ), lines
    assert any(
        line.startswith("roles/model_activation/defaults/main.yml:") and "duplicat" in line
        for line in lines
    ), lines
    assert any(
        line.startswith("library/activation_lock.py:") and "No module named 'numpy'" in line
        for line in lines
    ), lines


def test_only_the_defects_are_reported(broken_sanity):
    _, lines = broken_sanity
    paths = {line.split(":", 1)[0] for line in lines}
    assert paths == {
        "library/git_build.py",
        "module_utils/model_safety/utctime.py",
        "library/journal_proof.py",
        "roles/model_activation/defaults/main.yml",
        "library/activation_lock.py",
    }, lines


def test_the_ignore_file_has_one_line_per_file_and_reason(tmp_path):
    for name in ("a.py", "b.py"):
        (tmp_path / "plugins" / "modules").mkdir(parents=True, exist_ok=True)
        (tmp_path / "plugins" / "modules" / name).touch()
    lines = sanity_ignore_lines(tmp_path)
    module_entries = [entry for entry in SANITY_IGNORES if entry[1] == "plugins/modules/*.py"]
    assert len(lines) == 2 * len(module_entries)
    test, _, _, reason = module_entries[0]
    assert lines[0] == f"plugins/modules/a.py {test}  # {reason}\n"
    assert all(reason for *_, reason in SANITY_IGNORES)
