"""The lab itself: hosts, SSH, inventory, idempotent lab-up, clean lab-down, recovery."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
import yaml

from labctl import hosts as lab_hosts
from labctl.mounts import mounts_under
from labctl.network import link_exists
from labctl.processes import lab_processes, wait_gone
from tests.conftest import LAB_TEST_HOSTS, bring_up, labctl
from tests.local_ansible import ansible

# The whole lab: its size (3 hosts), every host in the inventory, lab-up and lab-down.
pytestmark = [pytest.mark.lab, pytest.mark.lab_whole]


def test_hosts_boot_with_systemd_and_their_own_identity(lab):
    for host in lab.hosts:
        assert host.out("hostname") == host.name
        assert host.out("systemctl", "is-system-running") == "running"
        assert host.out("cat", "/proc/1/comm") == "systemd"
        assert f"{host.address}/" in host.out("ip", "-o", "-4", "address", "show", "host0")
        assert host.out("redis-cli", "-h", "127.0.0.1", "-p", "6379", "PING") == "PONG"
    machine_ids = {host.out("cat", "/etc/machine-id") for host in lab.hosts}
    assert len(machine_ids) == LAB_TEST_HOSTS


def test_hosts_have_the_production_layout(lab):
    host = lab.hosts[0]
    stat = host.out(
        "stat",
        "-c",
        "%a %U %G",
        "/etc/quantum/ai-engine.env",
        "/opt/quantum/backups/model_activations",
        "/opt/quantum/data",
        "/etc/systemd/system/quantum-ai-engine.service.d",
    ).splitlines()
    assert stat == ["640 root qt", "700 root root", "750 qt qt", "755 root root"]
    assert host.out("systemctl", "is-enabled", "quantum-ai-engine.service") == "enabled"
    assert host.show("Restart", "Type")["Restart"] == "on-failure"
    env = host.read_file("/etc/quantum/ai-engine.env")
    assert "PATCHTST_SHADOW_ONLY=true" in env.splitlines()


def test_inventory_reaches_every_host_over_real_ssh(lab):
    inventory = yaml.safe_load(lab.config.inventory_file.read_text())
    engine_hosts = inventory["all"]["children"]["engine"]["hosts"]
    assert sorted(engine_hosts) == sorted(h.name for h in lab.hosts)
    result = ansible("ansible", "engine", "-m", "ansible.builtin.command", "-a", "hostname")
    assert result.returncode == 0, result.stdout + result.stderr
    for host in lab.hosts:
        assert f"{host.name} | CHANGED | rc=0" in result.stdout


def test_host_keys_are_pinned_not_trusted_blindly(lab, tmp_path):
    host = lab.hosts[0]
    wrong = tmp_path / "known_hosts"
    wrong.write_text(
        f"{host.address} ssh-ed25519 "
        "AAAAC3NzaC1lZDI1NTE5AAAAIHJrq3SwPB5ROOIMdyZVaIjQpOqXSdSHObpYV3Y9i5m6\n"
    )
    result = subprocess.run(
        [
            "ssh",
            "-i",
            str(lab.config.ssh_key),
            "-o",
            "BatchMode=yes",
            "-o",
            f"UserKnownHostsFile={wrong}",
            "-o",
            "StrictHostKeyChecking=yes",
            f"root@{host.address}",
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert (
        "HOST IDENTIFICATION HAS CHANGED" in result.stderr or "verification failed" in result.stderr
    )


def test_status_playbook_verifies_every_host(lab):
    result = ansible("ansible-playbook", "playbooks/status.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    for host in lab.hosts:
        assert host.name in result.stdout


def test_lab_up_is_idempotent(lab):
    before = {h.name: (h.invocation(), h.show("MainPID")["MainPID"]) for h in lab.hosts}
    processes_before = sorted((p.machine, p.pid) for p in lab_processes())
    inventory_before = lab.config.inventory_file.stat().st_mtime_ns
    result = labctl("up", "--hosts", str(LAB_TEST_HOSTS))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(" unchanged ") == LAB_TEST_HOSTS, result.stdout
    assert "created" not in result.stdout
    assert sorted((p.machine, p.pid) for p in lab_processes()) == processes_before
    assert {h.name: (h.invocation(), h.show("MainPID")["MainPID"]) for h in lab.hosts} == before
    assert lab.config.inventory_file.stat().st_mtime_ns == inventory_before


def _nothing_left(config) -> None:
    assert lab_processes() == []
    assert mounts_under(config.machines_dir) == []
    assert not any(link_exists(f"vb-{config.host_name(i)}") for i in range(1, 21))
    assert not link_exists(config.bridge)
    assert not config.inventory_file.exists()
    assert not config.machines_dir.exists() or not any(config.machines_dir.iterdir())


@pytest.mark.lab_lifecycle
def test_lab_down_powers_off_cleanly_and_a_later_lab_up_works(lab):
    result = labctl("down")
    assert result.returncode == 0, result.stderr
    assert "killing" not in result.stderr, "a host did not shut down cleanly"
    for host in lab.hosts:
        console = lab_hosts.console_log(lab.config, host.name).read_text(errors="replace")
        assert "System Power Off" in console, f"{host.name} did not power off:\n{console[-800:]}"
    _nothing_left(lab.config)
    again = labctl("down")
    assert again.returncode == 0 and "nothing was running" in again.stdout
    relab = bring_up()
    assert all(
        h.out("systemctl", "is-active", "quantum-ai-engine.service") == "active"
        for h in relab.hosts
    )


@pytest.mark.lab_lifecycle
def test_lab_up_recovers_from_a_killed_lab(lab):
    supervisors = [p.pid for p in lab_processes() if p.kind == "nspawn"]
    inits = [p.pid for p in lab_processes() if p.kind == "init"]
    assert len(supervisors) == LAB_TEST_HOSTS and len(inits) == LAB_TEST_HOSTS
    for pid in supervisors:
        os.kill(pid, signal.SIGKILL)
    assert wait_gone(supervisors, 10) == []
    # The hosts themselves survive their killed supervisors: these are the leftovers.
    assert {p.pid for p in lab_processes() if p.kind == "init"} == set(inits)
    relab = bring_up()
    assert "replacing an outdated or broken host" in relab.up_output
    assert not {p.pid for p in lab_processes()} & set(inits)
    for host in relab.hosts:
        assert host.out("systemctl", "is-active", "quantum-ai-engine.service") == "active"
