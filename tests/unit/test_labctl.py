"""labctl's pure parts: settings validation, preflight messages, inventory, mountinfo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from labctl import inventory as lab_inventory
from labctl import lab, mounts, network, rootfs
from labctl.config import LabError, load_config
from labctl.hosts import HostRecord, HostSpec, ssh_argv
from labctl.remote import set_env_keys


def test_defaults():
    config = load_config({})
    assert config.hosts == 1
    assert str(config.host_address(1)) == "10.231.57.11"
    assert str(config.gateway) == "10.231.57.1"
    assert config.host_name(3) == "qlab3"
    assert config.root == Path("/var/lib/model-safety-lab")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LAB_HOSTS": "0"}, "out of range"),
        ({"LAB_HOSTS": "21"}, "out of range"),
        ({"LAB_HOSTS": "three"}, "not a whole number"),
        ({"LAB_NAME_PREFIX": "Bad-Name"}, "LAB_NAME_PREFIX"),
        ({"LAB_BRIDGE": "br;rm -rf"}, "LAB_BRIDGE"),
        ({"LAB_BRIDGE": "qsclab0\n"}, "LAB_BRIDGE"),
        ({"LAB_SUBNET": "10.0.0.0/30"}, "too small"),
        ({"LAB_SUBNET": "not-a-net"}, "LAB_SUBNET"),
        ({"LAB_MIRROR": "ftp://x"}, "LAB_MIRROR"),
        ({"LAB_MIRROR": "http://deb.debian.org/debian\n"}, "LAB_MIRROR"),
        ({"LAB_ROOT": "relative/dir"}, "absolute"),
    ],
)
def test_bad_settings_are_refused(env, message):
    with pytest.raises(LabError, match=message):
        load_config(env)


def test_preflight_requires_root(monkeypatch):
    monkeypatch.setattr(lab.os, "geteuid", lambda: 1000)
    with pytest.raises(LabError, match="needs root"):
        lab.preflight()


def test_preflight_names_missing_packages(monkeypatch):
    monkeypatch.setattr(lab.os, "geteuid", lambda: 0)
    monkeypatch.setattr(lab.shutil, "which", lambda tool: None if tool == "debootstrap" else tool)
    with pytest.raises(LabError, match="missing Debian packages: debootstrap"):
        lab.preflight()


def test_preflight_refuses_a_machine_without_cgroups(monkeypatch, tmp_path):
    monkeypatch.setattr(lab.os, "geteuid", lambda: 0)
    monkeypatch.setattr(lab.shutil, "which", lambda tool: tool)
    monkeypatch.setattr(lab, "Path", lambda p: tmp_path if p == "/sys/fs/cgroup" else Path(p))
    with pytest.raises(LabError, match="no usable cgroup hierarchy"):
        lab.preflight()


def test_recipe_hash_follows_the_package_list(monkeypatch, tmp_path):
    config = load_config({})
    packages = tmp_path / "packages.txt"
    packages.write_text("systemd\n")
    monkeypatch.setattr(rootfs, "PACKAGES_FILE", packages)
    first = rootfs.recipe_hash(config)
    packages.write_text("systemd\nsqlite3\n")
    assert rootfs.recipe_hash(config) != first
    assert rootfs.packages() == ["systemd", "sqlite3"]


def test_the_real_package_list_has_what_the_lab_needs():
    wanted = {
        "systemd",
        "openssh-server",
        "python3",
        "python3-numpy",
        "python3-redis",
        "redis-server",
        "sqlite3",
        "git",
        "sudo",
    }
    assert wanted <= set(rootfs.packages())


def test_inventory_groups_hosts_under_engine_with_pinned_host_keys():
    config = load_config({"LAB_ROOT": "/srv/lab"})
    spec = HostSpec("qlab1", "10.231.57.11", "/img", "a" * 40, "qsclab0", "p" * 16)
    rendered = yaml.safe_load(lab_inventory.render(config, [HostRecord(spec, 1, "KEY")]))
    assert rendered["all"]["children"]["engine"]["hosts"] == {
        "qlab1": {"ansible_host": "10.231.57.11"}
    }
    common = rendered["all"]["vars"]["ansible_ssh_common_args"]
    assert "UserKnownHostsFile=/srv/lab/ssh/known_hosts" in common
    assert "StrictHostKeyChecking=yes" in common


def test_ssh_argv_quotes_the_remote_command():
    config = load_config({})
    argv = ssh_argv(config, "10.231.57.11", ["sh", "-c", "echo $HOME; id"])
    assert argv[-2:] == ["--", "sh -c 'echo $HOME; id'"]
    assert "StrictHostKeyChecking=yes" in argv


def test_mountinfo_unescapes_mount_points(monkeypatch, tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text(
        "36 35 98:0 / /srv/a\\040b rw,noatime master:1 - overlay overlay "
        "rw,lowerdir=/img,upperdir=/u,workdir=/w\n"
        "37 35 98:0 / /srv/a\\040b/proc rw - proc proc rw\n"
    )
    real_path = mounts.Path
    monkeypatch.setattr(
        mounts, "Path", lambda p: info if p == "/proc/self/mountinfo" else real_path(p)
    )
    assert mounts.mounts_under(real_path("/srv/a b")) == ["/srv/a b/proc", "/srv/a b"]
    assert mounts.overlay_lowerdirs() == {"/img"}


def test_networkd_unit_sets_the_static_address():
    unit = network.networkd_unit("10.231.57.12", 24)
    assert "Name=host0" in unit and "Address=10.231.57.12/24" in unit


def test_set_env_keys_keeps_everything_else():
    text = "# comment\nA=1\nB=2\n\nC=3\n"
    assert set_env_keys(text, {"B": "x", "D": "4", "C": None}) == "# comment\nA=1\nB=x\n\nD=4\n"


def _fake_boot(monkeypatch, states):
    """wait_ready against scripted SSH answers: system states in order, one failed unit."""
    import subprocess

    from labctl import hosts

    calls = []
    answers = iter(states)

    def fake_ssh(config, address, command, timeout=30, check=True):
        calls.append(command)
        if command[:2] == ["systemctl", "is-system-running"]:
            out = next(answers)
        elif command[:2] == ["systemctl", "list-units"]:
            out = "systemd-tmpfiles-setup-dev.service loaded failed failed Create Static\n"
        elif command[:2] == ["systemctl", "is-active"]:
            out = "active\n"
        else:
            out = "journal line\n"
        return subprocess.CompletedProcess(command, 0, out, "")

    monkeypatch.setattr(hosts, "ssh", fake_ssh)
    monkeypatch.setattr(hosts, "_port_open", lambda address, port: True)
    spec = HostSpec("qlab1", "10.231.57.11", "/img", "a" * 40, "qsclab0", "p" * 16)
    return hosts, HostRecord(spec, 1, "KEY"), calls


def test_a_degraded_boot_gets_one_more_start_of_its_failed_units(monkeypatch):
    hosts, record, calls = _fake_boot(monkeypatch, ["degraded\n", "running\n"])
    hosts.wait_ready(load_config({}), record)
    assert ["systemctl", "restart", "systemd-tmpfiles-setup-dev.service"] in calls


def test_a_host_that_stays_degraded_is_refused_with_the_units_journal(monkeypatch):
    hosts, record, _ = _fake_boot(monkeypatch, ["degraded\n", "degraded\n"])
    with pytest.raises(LabError, match=r"systemd-tmpfiles-setup-dev\.service") as failure:
        hosts.wait_ready(load_config({}), record)
    assert "journal line" in str(failure.value)


def test_lab_files_are_replaced_never_rewritten_in_place(tmp_path) -> None:
    """known_hosts is read by every lane's SSH while another lane's lab-up rewrites it: a
    reader must see the old file or the new one, never a truncated one (a CI run failed on
    'No ED25519 host key is known' so)."""
    from labctl import hosts

    path = tmp_path / "known_hosts"
    hosts._write(path, "old key\n", 0o600, (os.getuid(), os.getgid()))
    with path.open("rb") as reader:
        hosts._write(path, "new key\n", 0o600, (os.getuid(), os.getgid()))
        assert reader.read() == b"old key\n"
    assert path.read_bytes() == b"new key\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["known_hosts"]
