"""A canary rolled out across 6 lab hosts in batches (`canary_serial` [1, 2, 3]) that fails in
its second batch: the rollout stops there, the message names every changed host with the one
command that rolls them back, and that command does.

It needs the lab at 6 hosts (qlab1..qlab6), more than a lane's 3, so it is a `lab_whole` test:
`make test` runs it alone after the lanes, and it puts the lab back at the lanes' size.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator

import pytest

from labctl.remote import LabHost, set_env_keys
from tests.conftest import Lab, bring_up
from tests.integration.lab_activation import fresh, fresh_all, log_records, playbook, snapshot

pytestmark = [pytest.mark.lab, pytest.mark.lab_whole]

FLEET = 6
BATCHES = [1, 2, 3]
# The engine fails to start once a canary is configured: the state before it is healthy.
FAILS_TO_START_ON_THE_CANARY = {"SIM_FAULTS_ONLY_WITH_CANARY": "true", "SIM_FAIL_START": "true"}
STOPPED = re.compile(
    r"hosts already changed: (?P<hosts>[^|]+?) \| roll them back with: "
    r"ansible-playbook -i (?P<inventory>\S+) playbooks/rollback\.yml --limit (?P<limit>\S+) \|"
)


@pytest.fixture(scope="module")
def fleet() -> Iterator[Lab]:
    """The lab at 6 hosts, all reset; afterwards back at the size the other tests use."""
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (systemd-nspawn, mounts, veth); run `make test` as root")
    yield bring_up(FLEET, range(1, FLEET + 1))
    bring_up()


def batches_of(hosts: list[LabHost], sizes: list[int]) -> list[list[LabHost]]:
    """The hosts in the batches Ansible's serial makes of them (the last size repeated)."""
    batches, start = [], 0
    while start < len(hosts):
        size = sizes[min(len(batches), len(sizes) - 1)]
        batches.append(hosts[start : start + size])
        start += size
    return batches


def assert_canary_runs_proven(host: LabHost, before: dict) -> None:
    """The canary is installed, runs in the current start from the deployed build, and its
    activation (written only after the proof) is the host's one record."""
    after = snapshot(host)
    assert after["env"] == set_env_keys(before["env"], {"PATCHTST_SHADOW_ONLY": "false"})
    assert "qsc_canary.conf" in after["dropins"]
    assert after["lease"] == ""
    journal = host.journal(after["invocation"])
    assert f"AI_ENGINE_BUILD: {host.git_head()[:7]}" in journal
    assert any(line.startswith("[CANARY] patchtst weight=10%") for line in journal)
    (record,) = log_records(host)
    assert record["event"] == "activation" and record["invocation_id"] == after["invocation"]


def check_a_failure_in_the_second_batch(hosts: list[LabHost], sizes: list[int]) -> None:
    """The rollout of ``hosts`` in batches of ``sizes``, with the last host of the second batch
    failing to start on the canary."""
    first, second, *later = batches_of(hosts, sizes)
    *mates, failing = second
    untouched = [host for batch in later for host in batch]
    befores = fresh_all([host for host in hosts if host is not failing])
    befores[failing.name] = fresh(failing, **FAILS_TO_START_ON_THE_CANARY)

    run = playbook(
        "canary.yml", "-e", "model=patchtst", "-e", json.dumps({"canary_serial": sizes}),
        "-e", "canary_gate_wait=30", "--limit", ",".join(host.name for host in hosts),
    )  # fmt: skip

    assert run.returncode != 0
    assert f"canary patchtst stopped on {failing.name}" in run.output
    # Batch 1 was changed, proven and recorded before batch 2 began. Ansible starts batch 3
    # (the failing host's batch-mate had finished), and each of its hosts stops at once,
    # before it is touched, naming the host that failed.
    plays = [match.start() for match in re.finditer(r"PLAY \[Canary activation\]", run.output)]
    assert len(plays) == len(batches_of(hosts, sizes))
    for host in untouched:
        assert (
            f"canary patchtst stopped on {host.name}: {failing.name} failed in an earlier batch, "
            "so this host was not touched" in run.output
        ), run.output
    for host in first:
        recorded = re.search(
            rf"TASK \[model_activation : Record the change\] \**\s*changed: \[{host.name}\]",
            run.output,
        )
        assert recorded is not None and recorded.start() < plays[1]
        assert_canary_runs_proven(host, befores[host.name])
    # Ansible runs a batch in lockstep, a host's rescue after its batch-mates' steps: a mate
    # that passes every step finishes its canary, proven and recorded, before the batch stops.
    for host in mates:
        assert_canary_runs_proven(host, befores[host.name])
    # The failing host: restored byte-identically and started again on its old files.
    restored = snapshot(failing)
    assert restored["env"] == befores[failing.name]["env"]
    assert restored["env_stat"] == befores[failing.name]["env_stat"]
    assert restored["dropins"] == befores[failing.name]["dropins"] == {}
    assert restored["lease"] == ""
    assert [record["event"] for record in log_records(failing)] == ["activation_failed"]
    assert failing.show("ActiveState")["ActiveState"] == "active"
    assert not any(line.startswith("[CANARY]") for line in failing.journal(restored["invocation"]))
    for host in untouched:
        assert snapshot(host) == befores[host.name]
    # The message names exactly the changed hosts, earlier batches' too, and one command.
    (stopped,) = {
        match.group("hosts", "inventory", "limit") for match in STOPPED.finditer(run.output)
    }
    names, inventory, limit = stopped
    changed = [host.name for host in first + mates]
    assert names.split(", ") == changed and limit == ",".join(changed)

    rolled_back = playbook("rollback.yml", "-i", inventory, "--limit", limit)

    assert rolled_back.returncode == 0, rolled_back.output
    for host in first + mates:
        after = snapshot(host)
        assert after["env"] == befores[host.name]["env"]
        assert after["dropins"] == {}
        assert log_records(host)[-1]["event"] == "rollback_executed"
    assert snapshot(failing) == restored
    for host in untouched:
        assert snapshot(host) == befores[host.name]
    print(f"\nrollout {sizes} of {len(hosts)} hosts: {run.seconds} s", end="; ")
    print(f"rollback: {rolled_back.seconds} s")


def test_a_failure_in_the_second_batch_stops_the_rollout_and_names_every_changed_host(fleet):
    check_a_failure_in_the_second_batch(fleet.hosts, BATCHES)
