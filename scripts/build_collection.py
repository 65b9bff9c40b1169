#!/usr/bin/env python3
"""Build the Ansible collection qsc.model_safety from the checkout's own sources.

The collection is assembled in a temporary directory, never edited by hand: library/ becomes
plugins/modules/, module_utils/model_safety plugins/module_utils/model_safety, filter_plugins/
plugins/filter/, doc_fragments/ plugins/doc_fragments/, and roles/ and playbooks/ are copied.
Inside a collection, Ansible finds module_utils, doc fragments and filters only by their fully
qualified names, so the copies are rewritten on the way (imports, extends_documentation_fragment
entries, filter calls in YAML); the sources keep working from the checkout as they are.
galaxy.yml is generated here with the version and license of pyproject.toml, so neither is
written down twice, and so is tests/sanity/ignore-X.Y.txt (SANITY_IGNORES: each finding of
ansible-test sanity that is not a defect, with its reason; collection_sanity.py runs it).
`ansible-galaxy collection build` then writes the tarball, and next to it an
execution-environment.yml (ansible-builder's schema 3) that installs that very tarball.

Usage: build_collection.py [--output-dir DIR]   (prints the tarball's path)
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import yaml
from ansible.release import __version__ as ansible_version

# qsc = Quantum Safety Controls, the product's owner; model_safety = the package it ships.
NAMESPACE = "qsc"
NAME = "model_safety"
FQCN_PREFIX = f"{NAMESPACE}.{NAME}."
COLLECTION_MODULE_UTILS = (
    f"ansible_collections.{NAMESPACE}.{NAME}.plugins.module_utils.model_safety"
)
REPO = Path(__file__).resolve().parent.parent
# On the controller (or in an execution environment) the collection needs ansible-core alone:
# its filters and the one module it runs there (status_page) use the standard library only
# (tests/unit/test_collection.py imports every filter with numpy and redis blocked). The
# modules that need numpy and redis run on the targets, with Debian's python3-numpy and
# python3-redis (their docs' requirements).
# Sanity findings that are not defects, written into the collection's tests/sanity/ignore file
# (ansible-test sanity reads it; check_module_docs.py applies the same entries, to the message):
# (test:code, glob of collection paths or a tuple of them, start of the message, why).
SANITY_IGNORES = (
    (
        "validate-modules:missing-gplv3-license",
        "plugins/modules/*.py",
        "",
        "the collection is MIT; the GPLv3 header rule is for GPL content",
    ),
    (
        "validate-modules:import-before-documentation",
        "plugins/modules/*.py",
        "",
        "ruff (E402) keeps imports at the top; ansible-doc reads the docs from the AST",
    ),
    (
        "validate-modules:invalid-documentation",
        "plugins/modules/*.py",
        "DOCUMENTATION.author: Invalid author",
        "the author is the project's team, which has no GitHub handle",
    ),
    (
        # Run with the controller's Python (pyproject: 3.11). The import test then still
        # imports every module and filter with nothing but ansible-core: they import the
        # numpy/redis code only when they run, and fail with a clear message without it.
        f"import-{sys.version_info.major}.{sys.version_info.minor}!skip",
        "plugins/module_utils/model_safety/**/*.py",
        "",
        "module_utils import numpy and redis at the top (the targets' python3-numpy and "
        "python3-redis); the modules and filters that use them import them when they run",
    ),
    (
        "pylint:disallowed-name",
        tuple(
            f"plugins/module_utils/model_safety/{path}.py"
            for path in (
                "activation/backup_catalog",
                "activation/backup_create",
                "activation/backup_restore",
                "activation/lock",
                "dataset/features",
                "engine/role_proof",
                "judgement/drift",
                "judgement/scoreboard",
                "monitor/evidence",
                "monitor/healthy_bounds",
                "monitor/report",
                "monitor/settings",
                "monitor/stop_watch",
            )
        ),
        "",
        "_ is Python's name for a value not used; ansible's rule keeps _ for gettext, which "
        "this code does not use",
    ),
    (
        "pylint:unidiomatic-typecheck",
        (
            "plugins/module_utils/model_safety/telemetry/events.py",
            "plugins/module_utils/model_safety/telemetry/payload.py",
        ),
        "",
        "exact types on purpose: the payload parser's fast path takes json's own types only, "
        "and a bool is no number there",
    ),
    (
        "pylint:ansible-bad-function",
        tuple(
            f"plugins/module_utils/model_safety/{path}.py"
            for path in (
                "cli",
                "dataset/cli",
                "fleet/cli",
                "judgement/drift_cli",
                "monitor/cli",
                "monitor/loop",
                "monitor/timeline",
            )
        ),
        "",
        "the model-safety command line on the controller: print and sys.exit are its output "
        "and exit code; no module calls this code",
    ),
    (
        "pylint:ansible-bad-module-import",
        "plugins/module_utils/model_safety/monitor/loop.py",
        "",
        "the monitor (a controller command) resolves its hosts with Ansible's own inventory "
        "manager",
    ),
    (
        "pylint:missing-kwoa",
        "plugins/module_utils/model_safety/playbook_runner.py",
        "",
        "kind and private_dir reach PlaybookJob through **options, which pylint cannot follow",
    ),
    (
        "replace-urlopen",
        "plugins/module_utils/model_safety/monitor/store.py",
        "",
        "the monitor's webhook runs in the model-safety CLI on the controller, never in a module",
    ),
)
# Where each kind of collection file comes from in the checkout.
CHECKOUT_DIRS = (
    ("plugins/modules/", "library/"),
    ("plugins/filter/", "filter_plugins/"),
    ("plugins/module_utils/", "module_utils/"),
    ("plugins/doc_fragments/", "doc_fragments/"),
)

# The modules import ansible.module_utils.model_safety (Ansible's legacy module_utils path);
# the filters import model_safety (the package installed on the controller). Only import
# statements are matched, at the start of a line, so documentation text mentioning the package
# stays as it is.
_IMPORT_LINE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<keyword>from|import)[ \t]+"
    r"(?:ansible\.module_utils\.)?model_safety(?P<rest>(?:\.|[ \t]).*)?$",
    re.MULTILINE,
)


def rewrite_imports(source: str) -> str:
    """Point every import of model_safety (either spelling) at the collection's module_utils."""

    def collection_import(match: re.Match[str]) -> str:
        return f"{match['indent']}{match['keyword']} {COLLECTION_MODULE_UTILS}{match['rest'] or ''}"

    return _IMPORT_LINE.sub(collection_import, source)


def rewrite_doc_fragments(source: str, fragment_names: set[str]) -> str:
    """Qualify the entries of extends_documentation_fragment that name this project's fragments.

    A fragment is listed as `  - name` or `  - name.variable`; builtin fragments
    (action_common_attributes) are left unqualified, as ansible-core resolves those itself.
    """
    pattern = re.compile(
        r"^(?P<item>[ \t]*-[ \t]+)(?P<name>"
        + "|".join(map(re.escape, sorted(fragment_names)))
        + r")(?P<rest>(?:\.\w+)?[ \t]*)$",
        re.MULTILINE,
    )
    return pattern.sub(lambda m: f"{m['item']}{FQCN_PREFIX}{m['name']}{m['rest']}", source)


def rewrite_filter_calls(text: str, filter_names: set[str]) -> str:
    """Qualify calls of this project's filters (`| name`) in a role's or playbook's YAML.

    Ansible resolves unqualified filters only among the builtin ones, even inside a collection.
    """
    pattern = re.compile(
        r"(?P<pipe>\|[ \t]*)(?P<name>" + "|".join(map(re.escape, sorted(filter_names))) + r")\b"
    )
    return pattern.sub(lambda m: f"{m['pipe']}{FQCN_PREFIX}{m['name']}", text)


def checkout_path(collection_path: str) -> str:
    """The checkout path of a file of the assembled collection (roles/ and playbooks/ keep
    theirs)."""
    for collection_dir, checkout_dir in CHECKOUT_DIRS:
        if collection_path.startswith(collection_dir):
            return checkout_dir + collection_path.removeprefix(collection_dir)
    return collection_path


def sanity_ignore_lines(root: Path) -> list[str]:
    """tests/sanity/ignore-X.Y.txt of the collection laid out in root: one line per file and
    finding of SANITY_IGNORES, with its reason."""
    return [
        f"{path.relative_to(root).as_posix()} {test}  # {reason}\n"
        for test, patterns, _message, reason in SANITY_IGNORES
        for pattern in ((patterns,) if isinstance(patterns, str) else patterns)
        for path in sorted(root.glob(pattern))
    ]


def project_metadata(pyproject: Path) -> dict:
    """The [project] table of pyproject.toml; its version and license are the collection's."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    if not isinstance(project.get("license"), str) or not project["license"]:
        raise SystemExit(f"{pyproject}: [project] license must be an SPDX expression")
    return project


def galaxy_manifest(project: dict) -> dict:
    return {
        "namespace": NAMESPACE,
        "name": NAME,
        "version": project["version"],
        "readme": "README.md",
        "authors": ["Quantum Safety Controls"],
        "description": project["description"],
        "license": [project["license"]],
        "tags": ["ai", "models", "canary", "safety", "systemd"],
        "dependencies": {},
        "build_ignore": ["**/__pycache__", "*.pyc"],
    }


def project_requirement(project: dict, name: str) -> str:
    """The requirement (name and range) of ``name`` among the project's dependencies."""
    for requirement in project["dependencies"]:
        if re.match(rf"{re.escape(name)}\b(?!-)", requirement):
            return requirement
    raise SystemExit(f"pyproject.toml: no dependency {name}")


def execution_environment(tarball_name: str, project: dict) -> dict:
    """ansible-builder's execution-environment.yml (version 3) for the tarball next to it, with
    the project's ranges of ansible-core and ansible-runner (the collection needs nothing
    else on the controller)."""
    return {
        "version": 3,
        "images": {"base_image": {"name": "quay.io/fedora/fedora:41"}},
        "dependencies": {
            "python_interpreter": {
                "package_system": "python3.11",
                "python_path": "/usr/bin/python3.11",
            },
            "ansible_core": {"package_pip": project_requirement(project, "ansible-core")},
            "ansible_runner": {"package_pip": project_requirement(project, "ansible-runner")},
            "galaxy": {
                "collections": [{"name": f"/build/collections/{tarball_name}", "type": "file"}]
            },
        },
        "additional_build_files": [{"src": tarball_name, "dest": "collections"}],
    }


def filter_names(filter_dir: Path) -> set[str]:
    """The filters' names, from their documentation files (one <name>.yml per filter)."""
    return {path.stem for path in filter_dir.glob("*.yml")}


def _copy_rewritten(source: Path, target: Path, rewrite) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(rewrite(source.read_text(encoding="utf-8")), encoding="utf-8")


def assemble_plugins(repo: Path, root: Path) -> None:
    """Lay the collection's plugins out in root from the checkout at repo.

    The rewrites keep every line where it was, so a finding on a copy (check_module_docs.py
    runs validate-modules over these) has the line number of its source.
    """
    fragments = {path.stem for path in (repo / "doc_fragments").glob("*.py")}
    plugins = root / "plugins"
    for module in sorted((repo / "library").glob("*.py")):
        _copy_rewritten(
            module,
            plugins / "modules" / module.name,
            lambda text: rewrite_doc_fragments(rewrite_imports(text), fragments),
        )
    for source in sorted((repo / "module_utils" / "model_safety").rglob("*.py")):
        relative = source.relative_to(repo / "module_utils")
        _copy_rewritten(source, plugins / "module_utils" / relative, rewrite_imports)
    for source in sorted((repo / "filter_plugins").iterdir()):
        if source.suffix in (".py", ".yml"):
            _copy_rewritten(source, plugins / "filter" / source.name, rewrite_imports)
    shutil.copytree(
        repo / "doc_fragments",
        plugins / "doc_fragments",
        ignore=shutil.ignore_patterns("__pycache__"),
    )


def assemble(repo: Path, root: Path) -> None:
    """Lay the whole collection out in root (an empty directory) from the checkout at repo."""
    assemble_plugins(repo, root)
    filters = filter_names(repo / "filter_plugins")
    for tree in ("roles", "playbooks"):
        for source in sorted((repo / tree).rglob("*")):
            if source.is_dir() or "__pycache__" in source.parts:
                continue
            target = root / source.relative_to(repo)
            if source.suffix in (".yml", ".yaml"):
                _copy_rewritten(source, target, lambda text: rewrite_filter_calls(text, filters))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
    project = project_metadata(repo / "pyproject.toml")
    (root / "galaxy.yml").write_text(
        yaml.safe_dump(galaxy_manifest(project), sort_keys=False), encoding="utf-8"
    )
    (root / "meta").mkdir()
    (root / "meta" / "runtime.yml").write_text(
        yaml.safe_dump({"requires_ansible": ">=2.19"}), encoding="utf-8"
    )
    shutil.copy2(repo / "README.md", root / "README.md")
    core = ".".join(ansible_version.split(".")[:2])
    (root / "tests" / "sanity").mkdir(parents=True)
    (root / "tests" / "sanity" / f"ignore-{core}.txt").write_text(
        "".join(sanity_ignore_lines(root)), encoding="utf-8"
    )


def build(repo: Path, output_dir: Path) -> Path:
    """Assemble and build the collection; returns the tarball's path in output_dir."""
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="qsc-collection-") as temporary:
        root = Path(temporary) / NAME
        root.mkdir()
        assemble(repo, root)
        version = yaml.safe_load((root / "galaxy.yml").read_text(encoding="utf-8"))["version"]
        subprocess.run(
            [
                str(Path(sys.executable).parent / "ansible-galaxy"),
                "collection",
                "build",
                "--force",
                "--output-path",
                str(output_dir),
                str(root),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    tarball = output_dir / f"{NAMESPACE}-{NAME}-{version}.tar.gz"
    (output_dir / "execution-environment.yml").write_text(
        yaml.safe_dump(
            execution_environment(tarball.name, project_metadata(repo / "pyproject.toml")),
            sort_keys=False,
        ),
        encoding="utf-8",
    )
    return tarball


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output-dir", type=Path, default=REPO / "dist", help="where the tarball goes (dist/)"
    )
    args = parser.parse_args(argv)
    print(build(REPO, args.output_dir.resolve()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
