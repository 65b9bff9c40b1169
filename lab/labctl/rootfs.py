"""The lab hosts' Debian bookworm image: built once with debootstrap, cached by recipe hash.

The recipe is lab/rootfs/packages.txt plus this file (the customisation below): changing
either changes the hash, and the next lab-up builds a new image. Hosts boot from an overlay
on top of the image, so the image itself is never written after it is built.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

from .config import REPO_ROOT, LabConfig, LabError
from .mounts import overlay_lowerdirs, unmount_all_under
from .proc import log, run

PACKAGES_FILE = REPO_ROOT / "lab" / "rootfs" / "packages.txt"
READY_MARKER = ".model-safety-lab-rootfs"
SERVICE_USER = "qt"

SSHD_CONFIG = """\
# Lab hosts: key-only root login for Ansible, one host key generated per host at lab-up.
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
HostKey /etc/ssh/ssh_host_ed25519_key
"""
JOURNALD_CONFIG = """\
[Journal]
Storage=persistent
SystemMaxUse=64M
"""
# Timers and jobs that only add noise (or network access) to a short-lived test host.
MASKED_UNITS = (
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "console-getty.service",
    "systemd-timesyncd.service",
)
ENABLED_UNITS = ("systemd-networkd.service", "ssh.service", "redis-server.service")


def packages() -> list[str]:
    lines = PACKAGES_FILE.read_text().splitlines()
    names = [line.split("#")[0].strip() for line in lines]
    return [name for name in names if name]


def recipe_hash(config: LabConfig) -> str:
    digest = hashlib.sha256()
    digest.update(config.suite.encode())
    digest.update(PACKAGES_FILE.read_bytes())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:16]


def image_path(config: LabConfig) -> Path:
    return config.cache / f"rootfs-{recipe_hash(config)}"


def _customise(target: Path) -> None:
    """Turn a fresh debootstrap tree into a lab host image (run on the host, never in it)."""
    run(
        [
            "useradd",
            "--root",
            str(target),
            "--create-home",
            "--user-group",
            "--shell",
            "/bin/bash",
            SERVICE_USER,
        ]
    )
    (target / "etc/ssh/sshd_config.d").mkdir(parents=True, exist_ok=True)
    (target / "etc/ssh/sshd_config.d/10-lab.conf").write_text(SSHD_CONFIG)
    for key in (target / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (target / "etc/systemd/journald.conf.d").mkdir(parents=True, exist_ok=True)
    (target / "etc/systemd/journald.conf.d/10-lab.conf").write_text(JOURNALD_CONFIG)
    (target / "var/log/journal").mkdir(parents=True, exist_ok=True)
    # An empty machine-id makes systemd use the per-container UUID nspawn passes in.
    (target / "etc/machine-id").write_text("")
    # systemd would copy dbus's id (made once by debootstrap) into every host: link it instead.
    dbus_id = target / "var/lib/dbus/machine-id"
    dbus_id.unlink(missing_ok=True)
    dbus_id.symlink_to("/etc/machine-id")
    run(["systemctl", f"--root={target}", "enable", *ENABLED_UNITS])
    run(["systemctl", f"--root={target}", "mask", *MASKED_UNITS])
    for leftover in ("var/lib/apt/lists", "var/cache/apt/archives"):
        for entry in (target / leftover).glob("*"):
            if entry.is_file():
                entry.unlink()


def _remove_tree(path: Path) -> None:
    unmount_all_under(path)
    shutil.rmtree(path, ignore_errors=False)


def ensure_image(config: LabConfig) -> Path:
    """Return the cached image for the current recipe, building it first when missing."""
    image = image_path(config)
    if (image / READY_MARKER).is_file():
        return image
    config.cache.mkdir(parents=True, exist_ok=True)
    partial = image.with_name(image.name + ".partial")
    if partial.exists():
        log(f"removing an interrupted rootfs build at {partial}")
        _remove_tree(partial)
    if image.exists():
        _remove_tree(image)
    started = time.monotonic()
    log(f"building the {config.suite} rootfs with debootstrap into {image} (once per recipe)")
    try:
        run(
            [
                "debootstrap",
                "--variant=minbase",
                "--components=main",
                "--include=" + ",".join(packages()),
                config.suite,
                str(partial),
                config.mirror,
            ],
            timeout=1800,
        )
        _customise(partial)
    except LabError as exc:
        raise LabError(
            f"rootfs build failed: {exc}. The partial tree at {partial} is removed on the "
            "next lab-up; check that the Debian mirror (LAB_MIRROR) is reachable."
        ) from None
    (partial / READY_MARKER).write_text(recipe_hash(config) + "\n")
    partial.rename(image)
    log(f"rootfs built in {time.monotonic() - started:.0f} s")
    _remove_stale_images(config, keep=image)
    return image


def _remove_stale_images(config: LabConfig, keep: Path) -> None:
    in_use = overlay_lowerdirs()
    for old in config.cache.glob("rootfs-*"):
        if old != keep and str(old) not in in_use and not old.name.endswith(".partial"):
            log(f"removing the outdated rootfs {old}")
            _remove_tree(old)
