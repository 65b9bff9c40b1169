"""The collection qsc.model_safety: its assembly's rewrites, one license, and the built tarball
installed into a temporary collections path and used by its fully qualified names."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import yaml

from scripts import build_collection as bc
from tests.installed_collection import build_and_install

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
UTILS = "ansible_collections.qsc.model_safety.plugins.module_utils.model_safety"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "from ansible.module_utils.model_safety.engine.commands import EngineStateError",
            f"from {UTILS}.engine.commands import EngineStateError",
        ),
        (
            "    from ansible.module_utils.model_safety.judgement.run import (",
            f"    from {UTILS}.judgement.run import (",
        ),
        ("from model_safety.engine import weights", f"from {UTILS}.engine import weights"),
        ("from model_safety import names", f"from {UTILS} import names"),
        ("import model_safety.names as names", f"import {UTILS}.names as names"),
    ],
)
def test_rewrite_imports_points_model_safety_at_the_collection(line, expected):
    assert bc.rewrite_imports(f"x = 1\n{line}\ny = 2\n") == f"x = 1\n{expected}\ny = 2\n"


@pytest.mark.parametrize(
    "line",
    [
        "from ansible.module_utils.basic import AnsibleModule",
        "from model_safety_extra import thing",
        "  - A thin wrapper over C(model_safety.judgement.run.run_gate).",
        "# from model_safety.engine import weights",
        "x = 'from model_safety import names'",
    ],
)
def test_rewrite_imports_leaves_other_lines_alone(line):
    assert bc.rewrite_imports(line + "\n") == line + "\n"


def test_rewrite_doc_fragments_qualifies_only_the_projects_fragments():
    source = (
        "extends_documentation_fragment:\n"
        "  - action_common_attributes\n"
        "  - model_safety_redis.window\n"
        "  - model_safety_attributes\n"
        "  - model_safety_attributes_extra\n"
    )
    assert bc.rewrite_doc_fragments(source, {"model_safety_redis", "model_safety_attributes"}) == (
        "extends_documentation_fragment:\n"
        "  - action_common_attributes\n"
        "  - qsc.model_safety.model_safety_redis.window\n"
        "  - qsc.model_safety.model_safety_attributes\n"
        "  - model_safety_attributes_extra\n"
    )


def test_rewrite_filter_calls_qualifies_only_piped_project_filters():
    text = (
        "serial: \"{{ n | default(1) | model_safety_rollout_batches('canary_serial') }}\"\n"
        "name: model_safety_rollout_batches is documented\n"
        'x: "{{ y |model_safety_rollout_batches_v2 }}"\n'
    )
    assert bc.rewrite_filter_calls(text, {"model_safety_rollout_batches"}) == (
        'serial: "{{ n | default(1) | qsc.model_safety.model_safety_rollout_batches('
        "'canary_serial') }}\"\n"
        "name: model_safety_rollout_batches is documented\n"
        'x: "{{ y |model_safety_rollout_batches_v2 }}"\n'
    )


def test_project_metadata_refuses_a_pyproject_without_a_license(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\nversion = "1.0.0"\n', encoding="utf-8")
    with pytest.raises(SystemExit, match="license must be an SPDX expression"):
        bc.project_metadata(pyproject)


def test_one_license_everywhere():
    license_ = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "license"
    ]
    project = bc.project_metadata(REPO / "pyproject.toml")
    assert bc.galaxy_manifest(project)["license"] == [license_]
    for module in sorted((REPO / "library").glob("*.py")):
        header = module.read_text(encoding="utf-8").splitlines()[:3]
        assert f"# SPDX-License-Identifier: {license_}" in header, module.name
    for meta in sorted((REPO / "roles").glob("*/meta/main.yml")):
        galaxy_info = yaml.safe_load(meta.read_text(encoding="utf-8"))["galaxy_info"]
        assert galaxy_info["license"] == license_, meta


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_built_collection_installs_documents_and_runs_by_fqcn(tmp_path):
    started = time.monotonic()
    collection = build_and_install(tmp_path)
    install_seconds = time.monotonic() - started
    tarball, root, env = collection.tarball, collection.root, collection.env
    assert (
        tarball.name
        == "qsc-model_safety-" + bc.project_metadata(REPO / "pyproject.toml")["version"] + ".tar.gz"
    )
    assert install_seconds < 15, f"building and installing took {install_seconds:.1f} s"
    # Ansible runs with the checkout's settings but none of its paths.
    assert set(collection.dropped_settings) == {
        "inventory",
        "library",
        "module_utils",
        "filter_plugins",
        "doc_fragment_plugins",
        "roles_path",
    }

    # The execution environment next to the tarball: ansible-builder writes its build context
    # (no container engine here), with the tarball in it and installed from there.
    context = tmp_path / "context"
    created = _run(
        [
            str(BIN / "ansible-builder"),
            "create",
            "-f",
            "execution-environment.yml",
            "-c",
            str(context),
        ],
        os.environ.copy(),
        tarball.parent,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    assert (context / "_build" / "collections" / tarball.name).is_file()
    galaxy = yaml.safe_load((context / "_build" / "requirements.yml").read_text(encoding="utf-8"))
    assert galaxy["collections"] == [{"name": f"/build/collections/{tarball.name}", "type": "file"}]

    # Nothing but ansible-core on the controller: no Python requirements for ansible-builder.
    assert not (root / "requirements.txt").exists()
    assert not (root / "meta" / "execution-environment.yml").exists()

    # Every built module, module_utils file and filter compiles with its rewritten imports, and
    # none still imports through the checkout's paths.
    for source in sorted((root / "plugins").rglob("*.py")):
        text = source.read_text(encoding="utf-8")
        compile(text, str(source), "exec")
        assert bc.rewrite_imports(text) == text, source

    doc = _run(
        [str(BIN / "ansible-doc"), "-t", "module", "qsc.model_safety.quality_gate"], env, tmp_path
    )
    assert doc.returncode == 0, doc.stderr
    assert "qsc.model_safety.quality_gate" in doc.stdout
    assert "redis_url" in doc.stdout  # from the qualified doc fragment

    for playbook in ("qsc.model_safety.canary", "qsc.model_safety.rollback"):
        checked = _run(
            [str(BIN / "ansible-playbook"), "-i", "localhost,", "--syntax-check", playbook],
            env,
            tmp_path,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr

    log = tmp_path / "activation.log"
    playbook = root / "playbooks" / "test_local_fqcn.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "The collection's module and filter by their FQCN",
                    "hosts": "localhost",
                    "connection": "local",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "name": "Append a record in check mode",
                            "qsc.model_safety.activation_log": {
                                "path": str(log),
                                "record": {"event": "activation", "model": "patchtst"},
                            },
                            "check_mode": True,
                            "register": "logged",
                        },
                        {
                            "name": "Refuse a bad record",
                            "qsc.model_safety.activation_log": {
                                "path": str(log),
                                "record": {"event": "no_such_event"},
                            },
                            "check_mode": True,
                            "register": "refused",
                            "ignore_errors": True,
                        },
                        {
                            "name": "Report",
                            "ansible.builtin.debug": {
                                "msg": "ACTION={{ logged.record.action }} "
                                "REFUSED={{ refused.failed }} "
                                "BATCHES={{ 2 | qsc.model_safety.model_safety_rollout_batches("
                                "'canary_serial') }}"
                            },
                        },
                    ],
                }
            ]
        ),
        encoding="utf-8",
    )
    ran = _run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            "localhost,",
            "-e",
            # The targets' interpreter (Debian's python3), not the controller's venv.
            "ansible_python_interpreter=/usr/bin/python3",
            "qsc.model_safety.test_local_fqcn",
        ],
        env,
        tmp_path,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "ACTION=canary_activated REFUSED=True BATCHES=[2]" in ran.stdout
    assert not log.exists()  # check mode wrote nothing


def test_the_filters_need_no_numpy_or_redis_on_the_controller():
    """The collection declares no controller requirement: every filter plugin imports with
    numpy and redis unavailable (a None entry in sys.modules makes their import fail)."""
    code = (
        "import importlib.util, pathlib, sys\n"
        "sys.modules.update(numpy=None, redis=None)\n"
        "for path in sorted(pathlib.Path('filter_plugins').glob('*.py')):\n"
        "    spec = importlib.util.spec_from_file_location(path.stem, path)\n"
        "    module = importlib.util.module_from_spec(spec)\n"
        "    spec.loader.exec_module(module)\n"
        "    assert module.FilterModule().filters(), path\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "module_utils")}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and result.stdout == "ok\n", result.stderr
