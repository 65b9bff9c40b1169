"""`playbooks/shadow.yml` and `playbooks/promote.yml` for real, against the lab's hosts.

Shadow: a model file is deployed in shadow mode and proven from the journal (the file's
sha256) and new events (tagged shadow, never counted); a missing file changes nothing.
Promotion: every hard blocker is produced by the real engine with its SIM_ switches and stops
the promotion before anything changes; a jump is refused; the ladder 0.10 -> 0.25 -> 0.50 ->
1.0 shows each step's weights in the journal, and 1.0 is the promoted state (no drop-in).
"""

from __future__ import annotations

import hashlib
import json

import pytest

from labctl.config import REPO_ROOT
from labctl.remote import DROPIN_DIR, ENV_FILE, set_env_keys
from tests.integration.lab_activation import (
    BACKUPS,
    Run,
    fresh,
    log_records,
    playbook,
    snapshot,
)

pytestmark = pytest.mark.lab

MODEL_FILE = "/opt/quantum/models/patchtst-v2.pth"


def promote(host, *args: str) -> Run:
    # The tests' fresh starts are seconds old: 2 s of uptime instead of the lab's 10 (a later
    # -e in args, as in the uptime test, wins).
    return playbook(
        "promote.yml",
        "-e",
        "model=patchtst",
        "-e",
        "promote_min_uptime=2",
        "--limit",
        host.name,
        *args,
    )


def test_shadow_deploys_a_model_file_and_proves_it(hosts):
    host = hosts[0]
    content = "retrained patchtst weights\n" * 100
    before = fresh(host)
    host.write_file(MODEL_FILE, content, "0644", "root:root")
    sha256 = hashlib.sha256(content.encode()).hexdigest()

    run = playbook(
        "shadow.yml", "-e", "model=patchtst", "-e", f"model_path={MODEL_FILE}", "--limit", host.name
    )

    assert run.returncode == 0, run.output
    after = snapshot(host)
    assert after["env"] == set_env_keys(before["env"], {"PATCHTST_MODEL_PATH": MODEL_FILE})
    journal = host.journal(after["invocation"])
    assert f"[PatchTST-INIT] Model file: {MODEL_FILE} (present, sha256 {sha256[:12]})" in journal
    cutover = host.last_stream_id()
    for event in host.wait_events(cutover, 20, timeout=30):
        assert event["model_breakdown"]["patchtst"]["shadow"] is True
        assert event["total_models"] == 3
    (backup,) = after["backups"]
    metadata = json.loads(host.read_file(f"{BACKUPS}/{backup}/manifest.json"))["metadata"]
    assert metadata["model_sha256"] == sha256 and metadata["model_path"] == MODEL_FILE
    record = log_records(host)[-1]
    assert record["event"] == "shadow" and record["model_sha256"] == sha256


def test_shadow_with_a_missing_model_file_changes_nothing(hosts):
    host = hosts[0]
    before = fresh(host)

    run = playbook(
        "shadow.yml",
        "-e",
        "model=patchtst",
        "-e",
        "model_path=/opt/quantum/models/none.pth",
        "--limit",
        host.name,
    )

    assert run.returncode != 0
    assert "does not exist or is not a regular file; nothing was changed" in run.output
    assert snapshot(host) == before


def test_shadow_takes_a_voting_model_out_of_the_vote(hosts):
    host = hosts[0]
    before = fresh(host)

    run = playbook("shadow.yml", "-e", "model=xgb", "--limit", host.name)

    assert run.returncode == 0, run.output
    assert snapshot(host)["env"] == set_env_keys(before["env"], {"XGB_SHADOW_ONLY": "true"})
    cutover = host.last_stream_id()
    for event in host.wait_events(cutover, 20, timeout=30):
        assert event["model_breakdown"]["xgb"]["shadow"] is True
        assert event["model_breakdown"]["patchtst"]["shadow"] is True
        assert event["total_models"] == 2


@pytest.mark.parametrize(
    ("env", "args", "blocker"),
    [
        ({"SIM_SHADOW_LEAK": "true"}, (), "shadow model counted as voter"),
        ({"SIM_PAYLOAD_PAD": "1600"}, (), "bytes >= 1500"),
        ({"SIM_PATCHTST": "contrarian"}, (), "hard disagreement"),
        ({"SIM_PATCHTST": "constant"}, (), "NOT_READY"),
        ({}, ("-e", "promote_min_uptime=3600"), "< min_uptime 3600 s"),
    ],
    ids=["shadow-counted-as-voter", "payload-p95", "hard-disagreement", "shadow-gates", "uptime"],
)
def test_every_hard_blocker_stops_the_promotion(hosts, env, args, blocker):
    host = hosts[1]
    before = fresh(host, **env)
    host.wait_events(host.last_stream_id(), 220, timeout=30)

    run = promote(host, *args)

    assert run.returncode != 0
    assert "promotion of patchtst BLOCKED" in run.output
    assert blocker in run.output, run.output
    assert snapshot(host) == before


def test_a_jump_is_refused(hosts):
    host = hosts[1]
    before = fresh(host)

    run = promote(host, "-e", "weight=0.5")

    assert run.returncode != 0
    assert "the next step is 0.1" in run.output and "a jump needs -e allow_jump=true" in run.output
    assert snapshot(host) == before


def test_the_promotion_ladder_to_the_promoted_state(hosts):
    host = hosts[2]
    before = fresh(host)
    steps = []
    for weight, percent in (("0.1", "10"), ("0.25", "25"), ("0.5", "50"), ("1.0", "20")):
        host.wait_events(host.last_stream_id(), 220, timeout=30)
        run = promote(host, "-e", f"weight={weight}")
        assert run.returncode == 0, run.output
        journal = host.journal(host.invocation())
        assert f"[OK] patchtst agent loaded (weight: {percent}%)" in journal
        steps.append(run.seconds)
    after = snapshot(host)
    # Promoted: the model votes at its baseline weight; no canary drop-in is left.
    assert after["env"] == set_env_keys(before["env"], {"PATCHTST_SHADOW_ONLY": "false"})
    assert after["dropins"] == {}
    assert not any(line.startswith("[CANARY]") for line in host.journal(after["invocation"]))
    assert host.run("ls", f"{DROPIN_DIR}/qsc_canary.conf", check=False).returncode != 0
    assert [float(r["to"]) for r in log_records(host) if r["event"] == "promotion"] == [
        0.1,
        0.25,
        0.5,
        1.0,
    ]
    assert host.read_file(ENV_FILE).count("PATCHTST_SHADOW_ONLY=false") == 1
    decisions = sorted(
        (REPO_ROOT / "reports" / "safety" / host.name).glob("promotion_decision_*.md")
    )
    assert decisions and decisions[-1].read_text().startswith("# Promotion decision: patchtst")
    print(f"\npromotion steps: {steps} s")
