#!/usr/bin/env python3
"""Check how data crosses the task files of roles/ and playbooks/; `make lint`.

Usage: check_registered_vars.py [--root DIR]   (DIR: a checkout, default this script's own)

A registered result is read only in the file that registers it: data passes to another file
through documented role arguments or one documented result fact, never through a variable
that some other file happens to register (issue 14). And a task file is chosen statically:
an ``include_tasks``/``import_tasks`` or ``tasks_from`` whose file name is a Jinja expression
cannot be followed by a reader or a linter.

Only YAML values are searched (Jinja in task arguments, ``when``, ``vars``, defaults), not keys
or comments, and not meta/ (argument_specs document the result facts by name). Each problem is
printed as ``path: message``; the exit status is 1 when there is one, 0 when there is none.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

DYNAMIC_FILE_KEYS = ("include_tasks", "import_tasks", "tasks_from")


def yaml_files(root: Path) -> list[Path]:
    """The task, handler, defaults, vars and playbook files (meta/ and templates excluded)."""
    found = [*root.glob("playbooks/**/*.yml"), *root.glob("roles/*/*/**/*.yml")]
    return sorted(p for p in found if "meta" not in p.relative_to(root).parts)


def walk(node: object) -> Iterator[tuple[str | None, object]]:
    """Every (key, value) pair below node; list items come with the key of their list."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key), value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def strings(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def problems(root: Path) -> list[str]:
    documents = {path: yaml.safe_load(path.read_text()) for path in yaml_files(root)}
    registered: dict[str, set[Path]] = {}
    found = []
    for path, document in documents.items():
        for full_key, value in walk(document):
            key = full_key.rsplit(".", 1)[-1]  # ansible.builtin.include_tasks: include_tasks
            if key == "register" and isinstance(value, str):
                registered.setdefault(value, set()).add(path)
            if key in DYNAMIC_FILE_KEYS and isinstance(value, str) and "{{" in value:
                found.append(f"{path.relative_to(root)}: {key} chooses its file at run time")
            if key in ("include_tasks", "import_tasks") and isinstance(value, dict):
                name = value.get("file", "")
                if isinstance(name, str) and "{{" in name:
                    found.append(f"{path.relative_to(root)}: {key} chooses its file at run time")
    for name, owners in sorted(registered.items()):
        pattern = re.compile(rf"\b{re.escape(name)}\b")
        for path, document in documents.items():
            if path not in owners and any(pattern.search(text) for text in strings(document)):
                first = sorted(str(p.relative_to(root)) for p in owners)[0]
                found.append(
                    f"{path.relative_to(root)}: reads {name}, registered in {first}: pass it as a "
                    "role argument or through the result fact"
                )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args(argv)
    found = problems(args.root)
    for line in found:
        print(line)
    print(
        f"check-registered-vars: {len(yaml_files(args.root))} files: "
        + (f"{len(found)} problems" if found else "ok")
    )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
