#!/usr/bin/env python3
"""Check the documentation of every module (library/) and filter (filter_plugins/); `make lint`.

Usage: check_module_docs.py [--root DIR]   (DIR: a checkout, default this script's own)

Every problem is printed as ``path:line: code: message``; the exit status is 1 when there is
one, 0 when there is none (2 when a tool itself breaks). Three checks:

1. validate-modules, the code ``ansible-test sanity --test validate-modules`` runs (shipped in
   ansible-core's ``ansible_test``), over a collection assembled in a temporary directory from
   library/, module_utils/, doc_fragments/ and filter_plugins/: DOCUMENTATION, EXAMPLES and
   RETURN parse and follow the schema, the documented options match the argument_spec (names,
   types, defaults, required, choices) and every O()/RV() reference to the plugin's own
   options and return values exists. It is run directly, as ansible-test would run it:
   ansible-test itself first bootstraps pip from the internet into virtual environments of
   its own, while this needs only the two packages validate-modules imports, pinned in
   pyproject.toml.
2. ansible-doc, as operators run it (library paths, not a collection), renders every module
   and filter without an error or a warning.
3. What neither covers: each filter has a YAML doc (filter_plugins/<filter>.yml) whose options
   match the filter function's parameters, each reference to another plugin of this project
   (``RV(ansible.legacy.quality_gate#module:models)``, ``M(...)``, seealso) resolves, and
   every doc fragment parses.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import importlib.util
import inspect
import json
import os
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ansible_test
import yaml
from antsibull_docs_parser import dom
from antsibull_docs_parser.parser import Context, parse
from build_collection import NAME, NAMESPACE, SANITY_IGNORES, assemble_plugins, checkout_path

REPO_ROOT = Path(__file__).resolve().parent.parent
VALIDATE_MODULES = (
    Path(ansible_test.__file__).parent / "_util/controller/sanity/validate-modules/validate.py"
)
# How this project's docs name its own plugins: they are not in a collection.
OWN_FQCN_PREFIX = "ansible.legacy."
TOOL_TIMEOUT = 300


@dataclass(frozen=True, order=True)
class Problem:
    """One documentation problem, located in the checkout."""

    path: str
    line: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.code}: {self.message}"


@dataclass(frozen=True)
class Ignore:
    """A validate-modules finding that is not a defect of this project (each entry says why)."""

    path: str  # fnmatch pattern of the checkout path
    code: str
    message_start: str = ""

    def matches(self, problem: Problem) -> bool:
        """True when ``problem`` is the finding this entry ignores."""
        return (
            fnmatch.fnmatch(problem.path, self.path)
            and problem.code == self.code
            and problem.message.startswith(self.message_start)
        )


# The collection's sanity ignores (build_collection.SANITY_IGNORES, each with its reason) that
# are validate-modules findings, matched to their message here; and the licence header of the
# filters' YAML docs, which validate-modules asks for when run on them directly (ansible-test
# does not, so the collection's ignore file has no such entry).
IGNORES = (
    *(
        Ignore(checkout_path(pattern), test.removeprefix("validate-modules:"), message_start)
        for test, pattern, message_start, _reason in SANITY_IGNORES
        if test.startswith("validate-modules:")
    ),
    Ignore("filter_plugins/*.yml", "missing-gplv3-license"),
)


@dataclass(frozen=True)
class Tree:
    """Where the plugins are: a checkout and the collection assembled from it."""

    root: Path
    collection: Path  # .../ansible_collections/<namespace>/<collection>

    @property
    def modules(self) -> list[str]:
        """The module names (library/*.py)."""
        return sorted(p.stem for p in (self.root / "library").glob("*.py") if p.stem != "__init__")


def assemble_collection(root: Path, dest: Path) -> Path:
    """The plugins of the checkout ``root`` under ``dest``, as `make collection` assembles them
    (imports and doc fragment names rewritten on the same lines: line numbers stay right)."""
    collection = dest / "ansible_collections" / NAMESPACE / NAME
    assemble_plugins(root, collection)
    return collection


def tool_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This environment without the caller's Ansible settings (make exports ANSIBLE_CONFIG),
    plus ``extra``: the checks see only the configuration they set."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    return {**env, "ANSIBLE_NOCOLOR": "1", "PAGER": "cat", **extra}


def run_tool(cmd: list[str], env: Mapping[str, str], cwd: Path | None = None):
    """Run a checking tool; its output is captured for the caller to judge."""
    return subprocess.run(
        cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False
    )


class ToolError(RuntimeError):
    """A checking tool broke (rather than reporting problems)."""


def validate_modules(tree: Tree, env: Mapping[str, str], plugin_type: str, paths: list[str]):
    """validate-modules' findings for ``paths`` (relative to the collection) of one type."""
    if not paths:
        return []
    cmd = [sys.executable, str(VALIDATE_MODULES), "--format", "json", "--arg-spec"]
    cmd += ["--collection", str(tree.collection.relative_to(tree.collection.parents[2]))]
    cmd += ["--collection-version", project_version(tree.root)]
    if plugin_type != "module":
        cmd += ["--plugin-type", plugin_type]
    # As ansible-test: exit 3 means findings, anything else or any stderr means it broke.
    result = run_tool(cmd + paths, env, cwd=tree.collection)
    if result.stderr or result.returncode not in (0, 3):
        raise ToolError(f"validate-modules failed ({result.returncode}):\n{result.stderr}")
    return [
        Problem(checkout_path(path), int(error.get("line", 0)), error["code"], error["msg"])
        for path, found in json.loads(result.stdout).items()
        for error in found["errors"]
    ]


def project_version(root: Path) -> str:
    """The project's version (pyproject.toml), as the collection's."""
    with (root / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)["project"]["version"]


def ansible_doc(env: Mapping[str, str], plugin_type: str, names: list[str], *options: str):
    """ansible-doc for ``names`` of one plugin type."""
    cmd = [sys.executable, "-m", "ansible.cli.doc", "-t", plugin_type, *options, *names]
    return run_tool(cmd, env)


def render_failure(result: subprocess.CompletedProcess[str]) -> str | None:
    """Why an ansible-doc run failed: an error status or any output on stderr (ansible-doc
    only warns, exit 0, about a plugin it cannot find)."""
    if result.returncode != 0 or result.stderr.strip():
        return " ".join(result.stderr.split()) or f"ansible-doc exited {result.returncode}"
    return None


def render_failures(env: Mapping[str, str], plugin_type: str, names: list[str]) -> dict[str, str]:
    """Why each of ``names`` does not render with ansible-doc (empty when all do).

    ansible-doc stops at the first plugin it cannot render, so a failing batch is split in
    halves until the culprits are alone: a few runs of about a second each, not one per plugin.
    """
    why = render_failure(ansible_doc(env, plugin_type, names))
    if not why or len(names) == 1:
        return {names[0]: why} if why else {}
    half = len(names) // 2
    with ThreadPoolExecutor(2) as pool:
        parts = pool.map(
            lambda part: render_failures(env, plugin_type, part), (names[:half], names[half:])
        )
    found = {name: reason for part in parts for name, reason in part.items()}
    # Should the batch fail only as a whole, every plugin in it is named.
    return found or dict.fromkeys(names, why)


def render(env: Mapping[str, str], plugin_type: str, paths: Mapping[str, str]):
    """Render every plugin of ``paths`` (name -> checkout path) with ansible-doc; return the
    problems and the docs (ansible-doc --json) of the plugins that rendered."""
    names = sorted(paths)
    failures = render_failures(env, plugin_type, names) if names else {}
    problems = [Problem(paths[name], 0, "ansible-doc", why) for name, why in failures.items()]
    names = [name for name in names if name not in failures]
    if not names:
        return problems, {}
    dump = ansible_doc(env, plugin_type, names, "--json")
    if render_failure(dump):
        raise ToolError(f"ansible-doc --json failed on what it rendered: {render_failure(dump)}")
    return problems, json.loads(dump.stdout)


def filter_functions(root: Path) -> dict[str, tuple[Callable[..., Any], str]]:
    """Every filter that filter_plugins/ exposes: name -> (function, checkout path of its file)."""
    found = {}
    for path in sorted((root / "filter_plugins").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"_checked_filters_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for name, function in module.FilterModule().filters().items():
            found[name] = (function, f"filter_plugins/{path.name}")
    return found


def check_filter_docs(root: Path) -> tuple[list[Problem], dict[str, str]]:
    """Each filter has a YAML doc named after it whose options are the function's parameters
    (the first is ``_input``); every YAML doc belongs to a filter. Returns the problems and
    the docs that parse (filter name -> checkout path), for the other checks."""
    functions = filter_functions(root)
    problems, parsed = [], {}
    for name, (function, source) in sorted(functions.items()):
        where = f"filter_plugins/{name}.yml"
        if not (root / where).exists():
            problems.append(Problem(source, 0, "missing-documentation", f"{where} is missing"))
            continue
        try:
            options = yaml.safe_load((root / where).read_text())["DOCUMENTATION"]["options"]
        except (yaml.YAMLError, KeyError, TypeError) as exc:
            message = " ".join(f"no DOCUMENTATION with options: {exc}".split())
            problems.append(Problem(where, 0, "documentation-syntax-error", message))
            continue
        parsed[name] = where
        problems += [Problem(where, 0, *found) for found in signature_mismatches(function, options)]
    for doc in sorted((root / "filter_plugins").glob("*.yml")):
        if doc.stem not in functions:
            message = f"no filter {doc.stem} in filter_plugins/*.py"
            problems.append(Problem(f"filter_plugins/{doc.name}", 0, "no-such-filter", message))
    return problems, parsed


def signature_mismatches(function: Callable[..., Any], options: Any) -> Iterator[tuple[str, str]]:
    """(code, message) for each difference between a filter's parameters and its documented
    options: names, required exactly when there is no default, the same defaults."""
    options = options if isinstance(options, Mapping) else {}
    parameters = [
        parameter
        for parameter in inspect.signature(function).parameters.values()
        if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]
    by_option = {("_input" if i == 0 else p.name): p for i, p in enumerate(parameters)}
    for option in sorted(by_option.keys() - options.keys()):
        yield "undocumented-parameter", f"parameter {by_option[option].name} is not documented"
    for option in sorted(options.keys() - by_option.keys()):
        yield "nonexistent-parameter-documented", f"option {option} is no parameter"
    for option in sorted(by_option.keys() & options.keys()):
        parameter, doc = by_option[option], options[option] or {}
        required = parameter.default is parameter.empty
        if bool(doc.get("required")) != required:
            yield "doc-required-mismatch", f"option {option}: required is {required} in the code"
        default = doc.get("default")
        if not required and default != parameter.default:
            message = f"option {option}: default {default!r}, in the code {parameter.default!r}"
            yield "doc-default-does-not-match-spec", message


def check_fragments(root: Path) -> list[Problem]:
    """Every string of every doc fragment parses as a YAML mapping (validate-modules sees a
    fragment only through a module that uses it)."""
    problems = []
    for path in sorted((root / "doc_fragments").glob("*.py")):
        where = f"doc_fragments/{path.name}"
        for node in ast.walk(ast.parse(path.read_text(), filename=where)):
            if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)):
                continue
            if not isinstance(node.value.value, str):
                continue
            try:
                parsed = yaml.safe_load(node.value.value)
            except yaml.YAMLError as exc:
                message = " ".join(str(exc).split())
                problems.append(Problem(where, node.lineno, "documentation-syntax-error", message))
                continue
            if not isinstance(parsed, dict):
                message = "a fragment must be a YAML mapping"
                problems.append(Problem(where, node.lineno, "documentation-syntax-error", message))
    return problems


@dataclass(frozen=True)
class Documented:
    """What markup may point at in one plugin: the paths of its options and return values."""

    options: frozenset[tuple[str, ...]]
    returns: frozenset[tuple[str, ...]]


def entry_paths(tree: Any, sub_key: str, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every path of an options (``suboptions``) or return (``contains``) tree, aliases too."""
    if not isinstance(tree, Mapping):
        return
    for name, entry in tree.items():
        entry = entry if isinstance(entry, Mapping) else {}
        for key in (name, *(entry.get("aliases") or ())):
            yield (*prefix, key)
            yield from entry_paths(entry.get(sub_key), sub_key, (*prefix, key))


def strings(value: Any) -> Iterator[str]:
    """The strings of a text field (one string or a list of them)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        yield from (item for item in value if isinstance(item, str))


def tree_texts(tree: Any, sub_key: str, keys: tuple[str, ...]) -> Iterator[str]:
    """The texts of every entry of an options or return tree."""
    if not isinstance(tree, Mapping):
        return
    for entry in tree.values():
        if isinstance(entry, Mapping):
            for key in keys:
                yield from strings(entry.get(key))
            yield from tree_texts(entry.get(sub_key), sub_key, keys)


def doc_texts(doc: Mapping[str, Any], returns: Any) -> Iterator[str]:
    """Every text of a plugin's docs that may hold markup (where validate-modules looks)."""
    for key in ("short_description", "description", "notes", "requirements"):
        yield from strings(doc.get(key))
    for entry in doc.get("seealso") or []:
        yield from strings(entry.get("description"))
    for attribute in (doc.get("attributes") or {}).values():
        yield from strings(attribute.get("description"))
        yield from strings(attribute.get("details"))
    yield from tree_texts(doc.get("options"), "suboptions", ("description",))
    yield from tree_texts(returns, "contains", ("description", "returned"))


# Markup whose content is plain text: a "(" in it must be closed, or the markup ended early.
TEXT_CONTENT = {
    dom.PartType.CODE: "text",
    dom.PartType.ITALIC: "text",
    dom.PartType.BOLD: "text",
    dom.PartType.OPTION_VALUE: "value",
}
REFERENCE_KINDS = {
    dom.PartType.OPTION_NAME: ("options", "option"),
    dom.PartType.RETURN_VALUE: ("returns", "return value"),
}


def referenced_plugin(part: Any) -> tuple[str, str] | None:
    """(fqcn, type) of the plugin a markup part names explicitly, if it names one."""
    if part.type == dom.PartType.MODULE:
        return part.fqcn, "module"
    if part.type in (dom.PartType.PLUGIN, *REFERENCE_KINDS) and part.plugin is not None:
        return part.plugin.fqcn, part.plugin.type
    return None  # a plugin's own options and return values: validate-modules checks those


def part_problem(part: Any, catalog: Mapping[tuple[str, str], Documented]) -> str | None:
    """What is wrong with one markup part: an unclosed "(" in its text, or a reference to a
    plugin of this project (``ansible.legacy.<name>``), option or return value that does not
    exist."""
    if part.type in TEXT_CONTENT:
        text = getattr(part, TEXT_CONTENT[part.type])
        if text.count("(") > text.count(")"):
            return f'"{part.source}": a "(" in it is not closed (the markup ends at the first ")")'
        return None
    target = referenced_plugin(part)
    if target is None or not target[0].startswith(OWN_FQCN_PREFIX):
        return None
    plugin_type, name = target[1], target[0].removeprefix(OWN_FQCN_PREFIX)
    documented = catalog.get((plugin_type, name))
    if documented is None:
        return f'"{part.source}": no {plugin_type} {name} in this project'
    if part.type in REFERENCE_KINDS:
        attribute, kind = REFERENCE_KINDS[part.type]
        if tuple(part.link) not in getattr(documented, attribute):
            return f'"{part.source}": {plugin_type} {name} has no {kind} {part.name}'
    return None


def seealso_problems(doc: Mapping[str, Any], catalog: Mapping[tuple[str, str], Documented]):
    """Why each seealso entry naming a plugin of this project does not resolve."""
    for entry in doc.get("seealso") or []:
        fqcn = entry.get("module") or entry.get("plugin") or ""
        plugin_type = "module" if "module" in entry else entry.get("plugin_type")
        name = fqcn.removeprefix(OWN_FQCN_PREFIX)
        if fqcn.startswith(OWN_FQCN_PREFIX) and (plugin_type, name) not in catalog:
            yield f"seealso {fqcn}: no {plugin_type} {name} in this project"


def check_markup(docs: Mapping[tuple[str, str], tuple[str, Mapping[str, Any]]]) -> list[Problem]:
    """What validate-modules does not check in the markup: references from one plugin to
    another of this project (by its ``ansible.legacy.`` name, as M(), P(), O(), RV() and
    seealso) must resolve, and a "(" inside C(), I(), B() or V() must be closed.

    ``docs`` maps (type, name) to (checkout path, ansible-doc --json entry)."""
    catalog = {
        key: Documented(
            frozenset(entry_paths(entry["doc"].get("options"), "suboptions")),
            frozenset(entry_paths(entry.get("return"), "contains")),
        )
        for key, (_, entry) in docs.items()
    }
    problems = []
    for path, entry in docs.values():
        found = [
            problem
            for text in doc_texts(entry["doc"], entry.get("return"))
            for paragraph in parse(text, Context(), errors="message", add_source=True)
            for problem in map(lambda part: part_problem(part, catalog), paragraph)
            if problem
        ]
        found += seealso_problems(entry["doc"], catalog)
        problems += [Problem(path, 0, "invalid-documentation-markup", why) for why in found]
    return problems


def check(root: Path) -> tuple[list[Problem], int, int]:
    """Every documentation problem of the checkout ``root`` (ignored findings left out), and
    how many modules and filters were checked."""
    filter_problems, filter_docs = check_filter_docs(root)
    problems = filter_problems + check_fragments(root)
    with tempfile.TemporaryDirectory(prefix="check-module-docs-") as temp:
        temp_dir = Path(temp)
        empty_config = temp_dir / "ansible.cfg"
        empty_config.touch()
        tree = Tree(root, assemble_collection(root, temp_dir))
        modules = {name: f"library/{name}.py" for name in tree.modules}
        collection_env = tool_env(
            {
                "ANSIBLE_CONFIG": str(empty_config),
                "ANSIBLE_COLLECTIONS_PATH": str(temp_dir),
            }
        )
        doc_env = tool_env(
            {
                "ANSIBLE_CONFIG": str(empty_config),
                "ANSIBLE_LIBRARY": str(root / "library"),
                "ANSIBLE_MODULE_UTILS": str(root / "module_utils"),
                "ANSIBLE_DOC_FRAGMENT_PLUGINS": str(root / "doc_fragments"),
                "ANSIBLE_FILTER_PLUGINS": str(root / "filter_plugins"),
            }
        )
        with ThreadPoolExecutor() as pool:
            validated = [
                pool.submit(validate_modules, tree, collection_env, "module", sorted(
                    f"plugins/modules/{name}.py" for name in modules)),
                pool.submit(validate_modules, tree, collection_env, "filter", sorted(
                    f"plugins/filter/{name}.yml" for name in filter_docs)),
            ]  # fmt: skip
            rendered = {
                plugin_type: pool.submit(render, doc_env, plugin_type, paths)
                for plugin_type, paths in (("module", modules), ("filter", filter_docs))
            }
            docs = {}
            for plugin_type, future in rendered.items():
                render_problems, plugin_docs = future.result()
                paths = modules if plugin_type == "module" else filter_docs
                problems += render_problems
                docs |= {
                    (plugin_type, name): (paths[name], doc) for name, doc in plugin_docs.items()
                }
            problems += [problem for future in validated for problem in future.result()]
    problems += check_markup(docs)
    kept = sorted(p for p in set(problems) if not any(i.matches(p) for i in IGNORES))
    return kept, len(modules), len(filter_functions(root))


def main(argv: list[str] | None = None) -> int:
    """Run every check; print the problems; 0 when there is none."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="the checkout to check")
    args = parser.parse_args(argv)
    try:
        problems, modules, filters = check(args.root.resolve())
    except (ToolError, subprocess.TimeoutExpired) as exc:
        print(f"check-module-docs: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem)
    verdict = f"{len(problems)} problem(s)" if problems else "ok"
    print(f"check-module-docs: {modules} modules, {filters} filters: {verdict}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
