"""The collection qsc.model_safety as a user of it has it: built from the checkout by the real
builder, installed with ``ansible-galaxy collection install -p`` into a temporary collections
path, and Ansible run from outside the checkout with a configuration that points at none of the
checkout's library/, module_utils/, filter_plugins/, doc_fragments/ or roles/, so whatever the
playbooks find they find in the installed collection."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from scripts import build_collection

REPO_ROOT = Path(__file__).resolve().parents[1]
ANSIBLE_BIN = Path(sys.executable).parent


def config_without_checkout_paths(checkout_config: Path, target: Path) -> list[str]:
    """Write the checkout's ansible.cfg to ``target`` without the settings that name a path in
    the checkout (its inventory, library/, roles/, ...); returns the dropped keys.

    Everything else (host key checking, pipelining, the output format) stays as operators run
    it, so the collection's runs differ from the checkout's in where the content comes from only.
    """
    config = configparser.ConfigParser(interpolation=None)
    config.read(checkout_config, encoding="utf-8")
    dropped = []
    for section in config.sections():
        for key, value in list(config.items(section, raw=True)):
            if (checkout_config.parent / value).exists():
                config.remove_option(section, key)
                dropped.append(key)
    with target.open("w", encoding="utf-8") as written:
        config.write(written)
    return dropped


def collection_env(config: Path, collections: Path) -> dict[str, str]:
    """This process's environment with no ANSIBLE_* of its own (the checkout's ANSIBLE_CONFIG
    above all): Ansible reads ``config`` and finds collections in ``collections`` only."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_CONFIG=str(config),
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        # Not an ansible_collections package that happens to be on the Python path either.
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
        ANSIBLE_NOCOLOR="1",
        PATH=f"{ANSIBLE_BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


@dataclass(frozen=True)
class InstalledCollection:
    """An installed qsc.model_safety: ``root`` is its directory, ``cwd`` the directory to run
    Ansible from (outside the checkout), ``env`` the environment to run it with."""

    tarball: Path
    root: Path
    cwd: Path
    env: dict[str, str]
    dropped_settings: tuple[str, ...]

    def fqcn(self, name: str) -> str:
        return f"{build_collection.NAMESPACE}.{build_collection.NAME}.{name}"


def build_and_install(directory: Path) -> InstalledCollection:
    """Build the tarball into ``directory``/dist and install it into ``directory``/collections;
    a failed install raises with ansible-galaxy's output."""
    tarball = build_collection.build(REPO_ROOT, directory / "dist")
    collections = directory / "collections"
    dropped = config_without_checkout_paths(REPO_ROOT / "ansible.cfg", directory / "ansible.cfg")
    env = collection_env(directory / "ansible.cfg", collections)
    installed = subprocess.run(
        [
            str(ANSIBLE_BIN / "ansible-galaxy"),
            "collection",
            "install",
            "-p",
            str(collections),
            str(tarball),
        ],
        env=env,
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if installed.returncode != 0:
        raise RuntimeError(f"ansible-galaxy collection install failed:\n{installed.stderr}")
    root = collections / "ansible_collections" / build_collection.NAMESPACE / build_collection.NAME
    return InstalledCollection(tarball, root, directory, env, tuple(dropped))
