"""Mount bookkeeping read from /proc/self/mountinfo (no parsing of `mount` output)."""

from __future__ import annotations

from pathlib import Path

from .proc import run


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal (\040 ...).
    return field.encode().decode("unicode_escape")


def mounts() -> list[tuple[str, str, str]]:
    """(mount point, fs type, super options) of every mount in this namespace."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        point = _unescape(left.split()[4])
        fstype, _source, options = ([*right.split(), "", ""])[:3]
        found.append((point, fstype, options))
    return found


def mounts_under(directory: Path) -> list[str]:
    """Mount points at or below directory, deepest first (the order to unmount them in)."""
    base = str(directory.resolve()) if directory.exists() else str(directory)
    points = [p for p, _, _ in mounts() if p == base or p.startswith(base.rstrip("/") + "/")]
    return sorted(set(points), key=len, reverse=True)


def is_mounted(directory: Path) -> bool:
    return str(directory) in {p for p, _, _ in mounts()}


def unmount_all_under(directory: Path) -> None:
    """Unmount everything below directory; lazily when a killed process still pins a mount."""
    for point in mounts_under(directory):
        if run(["umount", point], check=False, quiet=True).returncode != 0:
            run(["umount", "--lazy", point])


def overlay_lowerdirs() -> set[str]:
    """Lower directories of every overlay mount (to tell which rootfs images are in use)."""
    lowers = set()
    for _point, fstype, options in mounts():
        if fstype != "overlay":
            continue
        for option in options.split(","):
            if option.startswith("lowerdir="):
                lowers.update(option.removeprefix("lowerdir=").split(":"))
    return lowers
