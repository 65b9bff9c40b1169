#!/usr/bin/env python3
"""ansible-test sanity over the collection qsc.model_safety as `make collection` assembles it.

`make lint` runs this. The collection is assembled from the checkout (build_collection.assemble,
with its tests/sanity/ignore file) in a temporary ansible_collections tree, and
``ansible-test sanity`` runs there with every test of the installed ansible-test (the ignore
file lists, with reasons, what is not a defect: e.g. the import test skips the module_utils
files, which import numpy and redis at the top, and imports every module and filter with
nothing but ansible-core).

ansible-test bootstraps pip into its virtual environments with a get-pip script it downloads
from ci-files.testing.ansible.com, and offers to use a copy saved in its cache instead. Only
package registries are reachable here, so that copy is written from the pinned pip wheel
(downloaded with pip, its sha256 checked): it installs that wheel, as get-pip does. The sanity
tests' own requirements then come from the package index, into ansible-test's cached virtual
environments (~/.ansible/test/venv), once.

Findings are printed as ``path:line:column: message`` with checkout paths (library/...,
module_utils/..., filter_plugins/...). Exit 0 clean, 1 findings, 2 a tool broke.

Usage: collection_sanity.py [--root DIR] [--test NAME ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from build_collection import NAME, NAMESPACE, assemble, checkout_path

REPO = Path(__file__).resolve().parent.parent
# The pip ansible-test's virtual environments get (ansible_test's get_venv_packages) and the
# sha256 of its wheel on PyPI.
PIP_VERSION = "24.2"
PIP_WHEEL = f"pip-{PIP_VERSION}-py3-none-any.whl"
PIP_WHEEL_SHA256 = "2cd581cf58ab7fcfca4ce8efa6dcacd0de5bf8d0a3eb9ec927e07405f4d9e2a2"
CACHE = Path("~/.ansible/test/cache").expanduser()
BOOTSTRAP = f'''"""pip's bootstrap for ansible-test, written by model-safety's collection_sanity.py:
installs the pinned pip wheel {PIP_WHEEL}, as get-pip.py would."""
import sys

WHEEL = {str(CACHE / PIP_WHEEL)!r}
sys.path.insert(0, WHEEL)
from pip._internal.cli.main import main  # noqa: E402

# get-pip's own options and the pip pin name what the wheel already is.
SKIP = ("--no-setuptools", "--no-wheel")
ARGS = [arg for arg in sys.argv[1:] if arg not in SKIP and not arg.startswith("pip==")]
sys.exit(main(["install", "--upgrade", "--force-reinstall", WHEEL, *ARGS]))
'''
TOOL_TIMEOUT = 900


class ToolError(RuntimeError):
    """A tool broke (rather than reporting findings)."""


def sha256(path: Path) -> str:
    """The file's sha256, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_pip_bootstrap() -> Path:
    """ansible-test's cached pip bootstrap script, written from the pinned wheel if absent."""
    script = CACHE / f"get_pip_{PIP_VERSION.replace('.', '_')}.py"
    wheel = CACHE / PIP_WHEEL
    CACHE.mkdir(parents=True, exist_ok=True)
    if not wheel.exists() or sha256(wheel) != PIP_WHEEL_SHA256:
        with tempfile.TemporaryDirectory(prefix="pip-wheel-", dir=CACHE) as download:
            result = subprocess.run(
                [
                    *(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"),
                    *("--only-binary=:all:", "--dest", download, f"pip=={PIP_VERSION}"),
                ],
                capture_output=True,
                text=True,
                timeout=TOOL_TIMEOUT,
                check=False,
            )
            downloaded = Path(download) / PIP_WHEEL
            if result.returncode != 0 or not downloaded.exists():
                raise ToolError(f"cannot download {PIP_WHEEL}:\n{result.stderr}")
            if sha256(downloaded) != PIP_WHEEL_SHA256:
                raise ToolError(f"{PIP_WHEEL} does not have the pinned sha256 {PIP_WHEEL_SHA256}")
            os.replace(downloaded, wheel)
    if not script.exists() or script.read_text(encoding="utf-8") != BOOTSTRAP:
        partial = script.with_suffix(".partial")
        partial.write_text(BOOTSTRAP, encoding="utf-8")
        os.replace(partial, script)
    return script


def sanity_env() -> dict[str, str]:
    """This environment without the caller's Ansible settings (make exports ANSIBLE_CONFIG)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    return {**env, "ANSIBLE_NOCOLOR": "1"}


def findings(results_dir: Path) -> list[str]:
    """Every failed test's findings from ansible-test's result files, with checkout paths."""
    found = []
    for result_file in sorted(results_dir.glob("ansible-test-sanity-*.json")):
        for result in json.loads(result_file.read_text(encoding="utf-8"))["results"]:
            for line in result.get("output", "").splitlines() or [result["message"]]:
                path, sep, rest = line.partition(":")
                found.append(f"{checkout_path(path)}{sep}{rest}" if sep else line)
    return found


def run_sanity(root: Path, tests: list[str]) -> list[str]:
    """The findings of ansible-test sanity over the collection assembled from ``root``."""
    ensure_pip_bootstrap()
    with tempfile.TemporaryDirectory(prefix="collection-sanity-") as temporary:
        collection = Path(temporary) / "ansible_collections" / NAMESPACE / NAME
        collection.mkdir(parents=True)
        assemble(root, collection)
        python = f"{sys.version_info.major}.{sys.version_info.minor}"
        cmd = [str(Path(sys.executable).parent / "ansible-test"), "sanity", "--python", python]
        cmd += [arg for test in tests for arg in ("--test", test)]
        result = subprocess.run(
            cmd,
            cwd=collection,
            env=sanity_env(),
            capture_output=True,
            text=True,
            timeout=TOOL_TIMEOUT,
            check=False,
        )
        found = findings(collection / "tests" / "output" / "bot")
        if result.returncode != 0 and not found:
            raise ToolError(f"ansible-test failed ({result.returncode}):\n{result.stderr}")
        return found


def main(argv: list[str] | None = None) -> int:
    """Run the sanity tests; print the findings; 0 when there is none."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO, help="the checkout to check")
    parser.add_argument(
        "--test",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this sanity test (repeatable; default: all)",
    )
    args = parser.parse_args(argv)
    try:
        found = run_sanity(args.root.resolve(), args.test)
    except (ToolError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"collection-sanity: {exc}", file=sys.stderr)
        return 2
    for line in found:
        print(line)
    verdict = f"{len(found)} finding(s)" if found else "ok"
    print(f"collection-sanity: {NAMESPACE}.{NAME}: {verdict}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
