"""The activation_backup module run for real by Ansible on the controller (local connection),
on real files in tmp_path: create, restore, verify, check mode, diff and failure messages."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL = ("-c", "local", "-i", "localhost,", "-e", f"ansible_python_interpreter={sys.executable}")
SECRET = b"QT_API_SECRET=hunter2\n"


def run_module(*options: str, **args: object) -> tuple[bool, dict, str]:
    """Run activation_backup once on localhost: (succeeded, its result, all output)."""
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible"),
            "localhost",
            *LOCAL,
            "-m",
            "activation_backup",
            "-a",
            json.dumps(args),
            *options,
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
        env={
            **os.environ,
            "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
            "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
        },
    )
    output = f"rc={result.returncode}\n{result.stdout}\n{result.stderr}"
    found = re.search(r"^localhost \| ([A-Z]+)!? => ", result.stdout, re.M)
    assert found, output
    succeeded = found.group(1) in ("SUCCESS", "CHANGED")
    assert succeeded == (result.returncode == 0), output
    return succeeded, json.JSONDecoder().raw_decode(result.stdout[found.end() :])[0], output


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


def backup_args(engine: dict[str, Path]) -> dict[str, object]:
    return {
        "root": str(engine["root"]),
        "model": "patchtst",
        "weight": 0.1,
        "git_sha": "18c7dbb",
        "files": [str(engine["env"]), str(engine["canary"])],
        "dirs": [str(engine["dropins"])],
        "metadata": {"gate": "PASS"},
    }


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
    ok, restored, output = run_module(state="restored", root=str(engine["root"]), model="patchtst")
    assert ok and restored["changed"] is True, output
    assert restored["path"] == path
    assert restored["restored"] == [str(engine["env"])]
    assert restored["removed"] == [str(engine["canary"])]
    assert engine["env"].read_bytes() == SECRET
    assert (engine["env"].stat().st_mode & 0o7777) == 0o640
    assert not engine["canary"].exists()

    ok, again, output = run_module(state="restored", path=path)
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
    ok, preview, output = run_module("--check", "--diff", state="restored", path=made["path"])
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
    ok, result, output = run_module(state="restored", root=root, model="patchtst")
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
    ok, preview, output = run_module(
        "--check", state="restored", root=root, name=name, mark_restored=mark
    )
    assert ok and preview["changed"] is True and preview["marked"] is False, output
    assert "restorations" not in json.loads((Path(made["path"]) / "manifest.json").read_text())

    ok, restored, output = run_module(state="restored", root=root, name=name, mark_restored=mark)
    assert ok and restored["changed"] is True and restored["marked"] is True, output
    assert restored["path"] == made["path"] and engine["env"].read_bytes() == SECRET
    ok, again, output = run_module(state="restored", root=root, name=name, mark_restored=mark)
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
        ok, result, output = run_module(state="restored", root=root, **args)
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

    ok, result, output = run_module(state="restored", root=root, mark_restored={"a": 1})
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

    ok, restored, output = run_module(state="restored", root=root, name=older_name)
    assert ok and restored["changed"] is True and engine["env"].read_bytes() == SECRET, output
