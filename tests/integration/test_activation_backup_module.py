"""The activation_backup module run for real by Ansible on the controller (local connection),
on real files in tmp_path: create, restore, verify, check mode, diff and failure messages, and
what a restore refuses to trust (paths outside the managed ones, set-id bits, a backup root
others can write, a backup dated in the future), also through the role's restore entry point."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from tests import local_ansible
from tests.local_ansible import JSON_RESULTS, LOCAL, ansible, host_results, printed

SECRET = b"QT_API_SECRET=hunter2\n"


def run_module(*options: str, **args: object) -> tuple[bool, dict, str]:
    """Run activation_backup once on localhost: (succeeded, its result, all output)."""
    return local_ansible.run_module("activation_backup", args, *options)


@pytest.fixture
def engine(tmp_path: Path) -> dict[str, Path]:
    if os.geteuid() != 0:
        pytest.skip("restoring owners needs root")
    env = tmp_path / "etc/quantum/ai-engine.env"
    dropins = tmp_path / "etc/systemd/system/quantum-ai-engine.service.d"
    env.parent.mkdir(parents=True)
    dropins.mkdir(parents=True)
    env.write_bytes(SECRET)
    os.chmod(env, 0o640)
    (dropins / "10-limits.conf").write_bytes(b"[Service]\nLimitNOFILE=65536\n")
    return {
        "root": tmp_path / "backups",
        "env": env,
        "dropins": dropins,
        "canary": dropins / "qsc_canary.conf",
    }


def managed(engine: dict[str, Path]) -> dict[str, object]:
    """The managed paths, as the roles pass them to both the backup and the restore."""
    return {
        "files": [str(engine["env"]), str(engine["canary"])],
        "dirs": [str(engine["dropins"])],
    }


def backup_args(engine: dict[str, Path]) -> dict[str, object]:
    return {
        "root": str(engine["root"]),
        "model": "patchtst",
        "weight": 0.1,
        "git_sha": "18c7dbb",
        **managed(engine),
        "metadata": {"gate": "PASS"},
    }


def run_restore(engine: dict[str, Path], *options: str, **args: object) -> tuple[bool, dict, str]:
    """Run activation_backup with state=restored and the engine's managed paths."""
    return run_module(*options, state="restored", **managed(engine), **args)


def test_present_restored_verified_round_trip(engine):
    ok, made, output = run_module(operator="alice", **backup_args(engine))
    assert ok and made["changed"] is True, output
    path = made["path"]
    assert Path(path).parent == engine["root"]
    assert re.fullmatch(r"[0-9]{8}T[0-9]{6}\.[0-9]{6}Z_patchtst", Path(path).name)
    assert made["manifest"]["operator"] == "alice" and made["manifest"]["weight"] == 0.1
    assert made["manifest"]["files"][1] == {"path": str(engine["canary"]), "absent": True}
    assert made["pruned"] == []
    assert "hunter2" not in output

    engine["env"].write_bytes(b"QT_API_SECRET=changed\n")
    engine["canary"].write_bytes(b"[Service]\n")
    ok, restored, output = run_restore(engine, root=str(engine["root"]), model="patchtst")
    assert ok and restored["changed"] is True, output
    assert restored["path"] == path
    assert restored["restored"] == [str(engine["env"])]
    assert restored["removed"] == [str(engine["canary"])]
    assert engine["env"].read_bytes() == SECRET
    assert (engine["env"].stat().st_mode & 0o7777) == 0o640
    assert not engine["canary"].exists()

    ok, again, output = run_restore(engine, path=path)
    assert ok and again["changed"] is False and again["restored"] == again["removed"] == []

    ok, verified, output = run_module(state="verified", root=str(engine["root"]))
    assert ok and verified["changed"] is False and verified["path"] == path, output
    assert verified["manifest"] == made["manifest"]


def test_check_mode_and_diff_write_nothing(engine):
    ok, planned, output = run_module("--check", **backup_args(engine))
    assert ok and planned["changed"] is True and planned["path"] is None, output
    assert [entry["path"] for entry in planned["plan"]["files"]] == [
        str(engine["env"]),
        str(engine["canary"]),
        str(engine["dropins"] / "10-limits.conf"),
    ]
    assert not engine["root"].exists()

    ok, made, _ = run_module(**backup_args(engine))
    engine["env"].write_bytes(b"QT_API_SECRET=changed\n")
    ok, preview, output = run_restore(engine, "--check", "--diff", path=made["path"])
    assert ok and preview["changed"] is True, output
    assert preview["restored"] == [str(engine["env"])]
    assert engine["env"].read_bytes() == b"QT_API_SECRET=changed\n"
    before = hashlib.sha256(b"QT_API_SECRET=changed\n").hexdigest()
    after = hashlib.sha256(SECRET).hexdigest()
    assert f"before: {engine['env']} (sha256 {before}, mode 0640" in output, output
    assert f"after: {engine['env']} (sha256 {after}, mode 0640" in output, output
    assert "hunter2" not in output and "changed\\n" not in output


def test_failures_name_the_path_and_the_problem(engine):
    root = str(engine["root"])
    ok, result, output = run_restore(engine, root=root, model="patchtst")
    assert not ok and result["msg"] == f"no backup under {root} for model patchtst", output

    ok, made, _ = run_module(**backup_args(engine))
    copy = Path(made["path"]) / ("files" + str(engine["env"]))
    copy.write_bytes(b"QT_API_SECRET=tampered\n")
    ok, result, output = run_module(state="verified", path=made["path"])
    assert not ok, output
    assert result["msg"].startswith(f"backup {Path(made['path']).name} is corrupt:")
    assert "saved copy has" in result["msg"] or "sha256 differs" in result["msg"]
    assert result["msg"].endswith("(newest intact: none)") and result["candidates"] == []
    assert result["problems"]

    ok, result, output = run_module(root=root, model="patchtst", files=["etc/x.env"], dirs=[])
    assert not ok, output
    assert result["msg"] == (
        "cannot back up for model patchtst: file 'etc/x.env' is not an absolute path"
    )
    ok, result, output = run_module(root=root, model="PatchTST")
    assert not ok and "model 'PatchTST' is not a valid model name" in result["msg"], output


def test_named_restore_is_marked_once(engine):
    ok, made, output = run_module(**backup_args(engine))
    assert ok, output
    name = Path(made["path"]).name
    root = str(engine["root"])
    mark = {"operator": "alice", "reason": "rollback"}

    engine["env"].write_bytes(b"QT_API_SECRET=changed\n")
    ok, preview, output = run_restore(engine, "--check", root=root, name=name, mark_restored=mark)
    assert ok and preview["changed"] is True and preview["marked"] is False, output
    assert "restorations" not in json.loads((Path(made["path"]) / "manifest.json").read_text())

    ok, restored, output = run_restore(engine, root=root, name=name, mark_restored=mark)
    assert ok and restored["changed"] is True and restored["marked"] is True, output
    assert restored["path"] == made["path"] and engine["env"].read_bytes() == SECRET
    ok, again, output = run_restore(engine, root=root, name=name, mark_restored=mark)
    assert ok and again["changed"] is False and again["marked"] is False, output

    ok, verified, output = run_module(state="verified", root=root, name=name)
    assert ok, output
    (record,) = verified["manifest"]["restorations"]
    assert {k: v for k, v in record.items() if k != "ts"} == mark
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", record["ts"])
    assert {k: v for k, v in verified["manifest"].items() if k != "restorations"} == made[
        "manifest"
    ]


def test_name_and_mark_restored_failures(engine):
    root = str(engine["root"])
    ok, made, output = run_module(**backup_args(engine))
    name = Path(made["path"]).name
    unknown = "20260101T000000.000000Z_patchtst"
    for args, message in [
        ({"name": unknown}, f"no backup {unknown} under {root}; the newest: {name}"),
        ({"name": f"../{name}"}, "not a backup name"),
        ({"name": name, "model": "xgb"}, f"backup {name} is not a backup of model xgb"),
        ({"name": name, "path": made["path"]}, "parameters are mutually exclusive: path|name"),
        ({"name": name, "mark_restored": {"ts": "x"}}, "invalid mark_restored: a restoration"),
    ]:
        ok, result, output = run_restore(engine, root=root, **args)
        assert not ok and message in result["msg"], output
    ok, result, output = run_module(state="verified", root=root, mark_restored={"a": 1})
    assert not ok and result["msg"] == "mark_restored records a restore, only with state=restored"
    ok, result, output = run_module(name=name, **backup_args(engine))
    assert not ok and "not with state=present" in result["msg"], output


def test_a_corrupt_latest_backup_is_refused_naming_the_newest_intact(engine):
    root = str(engine["root"])
    ok, older, _ = run_module(**backup_args(engine))
    engine["env"].write_bytes(b"QT_API_SECRET=newer\n")
    ok, latest, _ = run_module(**backup_args(engine))
    copy = Path(latest["path"]) / ("files" + str(engine["env"]))
    copy.write_bytes(b"QT_API_SECRET=tampered\n")
    engine["env"].write_bytes(b"QT_API_SECRET=livesecret\n")

    ok, result, output = run_restore(engine, root=root, mark_restored={"a": 1})
    assert not ok, output
    latest_name, older_name = Path(latest["path"]).name, Path(older["path"]).name
    assert result["msg"] == (
        f"backup {latest_name} is corrupt: {'; '.join(result['problems'])}; nothing was "
        f"changed; choose another with -e backup=<name> (newest intact: {older_name})"
    )
    assert result["candidates"] == [older_name] and result["path"] == latest["path"]
    assert engine["env"].read_bytes() == b"QT_API_SECRET=livesecret\n"
    assert "restorations" not in json.loads((Path(older["path"]) / "manifest.json").read_text())
    assert "tampered" not in output and "livesecret" not in output

    ok, restored, output = run_restore(engine, root=root, name=older_name)
    assert ok and restored["changed"] is True and engine["env"].read_bytes() == SECRET, output


# --------------------------------------------------------------------------- what a restore trusts


def warned(output: str) -> list[str]:
    """The warnings Ansible printed (each on one line, whatever the terminal's width)."""
    return re.findall(r"^\[WARNING\]: (.*)$", output, re.M)


def edit_manifest(backup: str, edit) -> None:
    """Rewrite the backup's manifest with ``edit`` applied (the copies still verify)."""
    manifest_path = Path(backup) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    edit(manifest)
    manifest_path.write_text(json.dumps(manifest))


def test_forged_manifest_with_a_path_outside_the_managed_ones_is_refused(engine, tmp_path):
    ok, made, output = run_module(**backup_args(engine))
    assert ok, output
    target = tmp_path / "etc/cron.d/x"
    planted = b"* * * * * root sh /tmp/x\n"
    copy = Path(made["path"]) / ("files" + str(target))
    copy.parent.mkdir(parents=True)
    copy.write_bytes(planted)
    entry = {
        "path": str(target),
        "saved_as": "files" + str(target),
        "sha256": hashlib.sha256(planted).hexdigest(),
        "size": len(planted),
        "mode": 0o644,
        "uid": 0,
        "gid": 0,
    }
    edit_manifest(made["path"], lambda manifest: manifest["files"].append(entry))
    ok, _, output = run_module(state="verified", path=made["path"])
    assert ok, output  # the forgery verifies: only the managed paths stop it
    engine["env"].write_bytes(b"QT_API_SECRET=changed\n")

    for options in ((), ("--check",)):
        ok, result, output = run_restore(engine, *options, path=made["path"])
        assert not ok, output
        assert result["msg"] == (
            f"backup {made['path']} cannot be restored, nothing was changed: "
            f"{target} is not a managed file"
        )
        assert result["problems"] == [f"{target} is not a managed file"]
    assert not target.exists() and not target.parent.exists()
    assert engine["env"].read_bytes() == b"QT_API_SECRET=changed\n"


def test_setuid_mode_is_restored_without_it_and_said(engine):
    ok, made, output = run_module(**backup_args(engine))
    assert ok, output

    edit_manifest(made["path"], lambda manifest: manifest["files"][0].update(mode=0o4755))
    ok, result, output = run_restore(engine, path=made["path"])
    assert ok and result["restored"] == [str(engine["env"])], output
    assert (engine["env"].stat().st_mode & 0o7777) == 0o755
    assert (
        f"{engine['env']}: the backup's mode 4755 is restored as 0755 (never set-id or sticky "
        "bits, never writable by others, by the group only for root:root)"
    ) in warned(output)
    ok, again, output = run_restore(engine, path=made["path"])
    assert ok and again["changed"] is False, output


@pytest.mark.parametrize(
    ("mode", "uid"),
    [(0o775, 0), (0o707, 0), (0o700, 1000)],
    ids=["group-writable", "other-writable", "not-root-owned"],
)
def test_a_backup_root_not_root_s_alone_is_refused(engine, mode, uid):
    root = engine["root"]
    ok, made, output = run_module(**backup_args(engine))
    assert ok and (root.stat().st_mode & 0o7777) == 0o700 and root.stat().st_uid == 0, output
    engine["env"].write_bytes(b"QT_API_SECRET=changed\n")
    os.chmod(root, mode)
    os.chown(root, uid, 0)
    refusal = f"backup root {root} is owned by uid {uid} with mode {mode:04o}; refused"

    ok, result, output = run_restore(engine, path=made["path"])
    assert not ok and result["msg"].startswith(refusal), output
    ok, result, output = run_restore(engine, root=str(root))
    assert not ok and result["msg"].startswith(refusal), output
    ok, result, output = run_module(**backup_args(engine))
    assert not ok, output
    assert result["msg"].startswith(f"cannot back up for model patchtst: {refusal}")
    assert engine["env"].read_bytes() == b"QT_API_SECRET=changed\n"
    assert os.listdir(root) == [Path(made["path"]).name]


def test_a_future_dated_backup_is_never_the_newest_nor_restored_by_name(engine):
    root = engine["root"]
    ok, made, output = run_module(**backup_args(engine))
    assert ok, output
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    future = root / f"{tomorrow:%Y%m%dT%H%M%S.%fZ}_patchtst"
    shutil.copytree(made["path"], future)  # a copy verifies: the name is not in the manifest
    engine["env"].write_bytes(b"QT_API_SECRET=changed\n")
    warning = (
        f"backup {future.name} under {root} is dated later than now + 5 min (or at no real "
        "time): never taken as the newest, never pruned, refused by name; inspect and remove it"
    )

    ok, result, output = run_restore(engine, root=str(root), name=future.name)
    assert not ok, output
    assert result["msg"].startswith(f"backup {future.name} is dated later than now + 5 min")
    assert engine["env"].read_bytes() == b"QT_API_SECRET=changed\n"

    ok, verified, output = run_module(state="verified", root=str(root))
    assert ok and verified["path"] == made["path"] and warning in warned(output), output
    ok, restored, output = run_restore(engine, root=str(root))
    assert ok and restored["path"] == made["path"] and warning in warned(output), output
    assert engine["env"].read_bytes() == SECRET
    ok, pruned, output = run_module(keep=1, **backup_args(engine))
    assert ok and pruned["pruned"] == [made["path"]] and future.exists(), output
    assert warning in warned(output)


ROLE_RESTORE = """\
- name: Restore with the role, as the rescue and the rollback do
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Start the activation's result
      ansible.builtin.set_fact:
        model_activation_result: {}

    - name: Restore the backup
      ansible.builtin.include_role:
        name: model_activation
        tasks_from: restore_files.yml
"""


def run_role_restore(tmp_path: Path, engine: dict[str, Path], backup: str) -> tuple[bool, dict]:
    """Run the role's restore step with the engine's paths as group_vars give them
    (nothing else about them is passed): whether it succeeded, and the module's result."""
    group_vars = {
        "ai_engine_env_file": str(engine["env"]),
        "ai_engine_dropin_dir": str(engine["dropins"]),
        "ai_engine_canary_dropin": engine["canary"].name,
        "model_safety_backup_dir": str(engine["root"]),
        "model_activation_restore_path": backup,
    }
    (tmp_path / "restore.yml").write_text(ROLE_RESTORE)
    (tmp_path / "vars.json").write_text(json.dumps(group_vars))
    process = ansible(
        "ansible-playbook",
        *LOCAL,
        "-e",
        f"@{tmp_path / 'vars.json'}",
        str(tmp_path / "restore.yml"),
        env=JSON_RESULTS,
        timeout=120,
    )
    output = printed(process)
    found = host_results(process.stdout).get("localhost")
    assert found, output
    result = found[-1]
    # A restore that succeeded ends with the role keeping what it restored in its result fact.
    kept = result.get("ansible_facts", {}).get("model_activation_result", {}).get("restored")
    return process.returncode == 0, {**(kept or result), "output": output}


def test_the_role_restores_only_the_group_vars_paths(engine, tmp_path):
    ok, made, output = run_module(**backup_args(engine))
    assert ok, output
    engine["env"].write_bytes(b"QT_API_SECRET=changed\n")
    engine["canary"].write_bytes(b"[Service]\n")
    ok, result = run_role_restore(tmp_path, engine, made["path"])
    assert ok and result["restored"] == [str(engine["env"])], result["output"]
    assert result["removed"] == [str(engine["canary"])] and engine["env"].read_bytes() == SECRET

    outside = tmp_path / "etc/cron.d/x"
    edit_manifest(made["path"], lambda m: m["files"].append({"path": str(outside), "absent": True}))
    outside.parent.mkdir(parents=True)
    outside.write_bytes(b"kept\n")
    ok, result = run_role_restore(tmp_path, engine, made["path"])
    assert not ok and result["problems"] == [f"{outside} is not a managed file"], result["output"]
    assert outside.read_bytes() == b"kept\n"
