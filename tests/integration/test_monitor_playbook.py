"""playbooks/monitor.yml for real: the monitor as a transient systemd unit on a control node
that has systemd (a lab host stands in, running a stand-in executable), and the foreground
command where there is none (this machine)."""

from __future__ import annotations

import time

import pytest

from tests.integration.lab_activation import playbook

pytestmark = pytest.mark.lab

UNIT = "quantum-qsc-monitor.service"
FAKE = "/usr/local/bin/fake-model-safety"


def test_without_systemd_it_gives_the_foreground_command(lab):
    run = playbook("monitor.yml", "-e", "model=patchtst", "-e", "monitor_duration=2h")

    assert run.returncode != 0
    assert "does not run systemd" in run.output
    assert "model-safety monitor --model patchtst --project-dir" in run.output
    assert "--duration 2h" in run.output


@pytest.mark.parametrize(
    "extra", [("-e", "model=Bad"), ("-e", "model=patchtst", "-e", "monitor_duration=6h;rm")]
)
def test_bad_input_is_refused(lab, extra):
    run = playbook("monitor.yml", *extra)

    assert run.returncode != 0
    assert "give -e model=<canary model>" in run.output


def test_it_starts_once_as_a_unit_that_systemd_restarts_when_killed(hosts):
    node = hosts[2]
    node.write_file(FAKE, "#!/bin/sh\nexec sleep 600\n")
    node.run("chmod", "755", FAKE)
    args = (
        "-e",
        "model=patchtst",
        "-e",
        f"monitor_control_node={node.name}",
        "-e",
        f"monitor_executable={FAKE}",
        "-e",
        "monitor_project_dir=/tmp",
        "-e",
        "monitor_limit=engine",
    )
    try:
        checked = playbook("monitor.yml", *args, "--check")
        assert checked.returncode == 0, checked.output
        assert f"{UNIT} would start: {FAKE} monitor --model patchtst" in checked.output
        assert node.run("systemctl", "is-active", UNIT, check=False).stdout.strip() != "active"

        started = playbook("monitor.yml", *args)
        assert started.returncode == 0, started.output
        assert "changed=1" in started.output
        shown = node.out("systemctl", "show", UNIT, "--property=ExecStart", "--property=Restart")
        assert "Restart=on-abnormal" in shown
        assert f"argv[]={FAKE} monitor --model patchtst --project-dir /tmp" in shown
        assert "--limit engine" in shown

        again = playbook("monitor.yml", *args)
        assert again.returncode == 0, again.output
        assert "changed=0" in again.output and "already runs" in again.output

        pid = node.out("systemctl", "show", UNIT, "--property=MainPID", "--value").strip()
        node.run("kill", "-KILL", pid)
        deadline = time.monotonic() + 30
        restarted = pid
        while time.monotonic() < deadline and restarted in (pid, "0"):
            time.sleep(1)
            restarted = node.out("systemctl", "show", UNIT, "--property=MainPID", "--value")
            restarted = restarted.strip()
        assert restarted not in (pid, "0")
    finally:
        node.run("systemctl", "stop", UNIT, check=False)
        node.run("rm", "-f", FAKE, check=False)
