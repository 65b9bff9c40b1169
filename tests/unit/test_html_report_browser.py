"""The HTML report as headless Debian Chromium draws it (installed by `make setup`): the key
elements in its DOM, no console errors, a screenshot that is not blank. About 3 s."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime

import numpy as np
from matplotlib.image import imread

from model_safety.judgement.html_report import render_html
from model_safety.monitor.timeline import read_timeline
from model_safety.monitor.timeline_page import render_timeline

from .test_compare_reports import compared
from .test_monitor_timeline import watched
from .test_reports import gate_result

NOW = datetime(2026, 1, 10, 12, 0, 5, tzinfo=UTC)


def chromium(tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Debian chromium, offline and with a throw-away profile."""
    binary = shutil.which("chromium")
    assert binary, "chromium is missing: `make setup` installs Debian's chromium package"
    argv = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr", "--v=0", "--window-size=1200,900", *args]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)


def console_lines(run: subprocess.CompletedProcess[str]) -> list[str]:
    """The page's console messages chromium logged (``--enable-logging=stderr --v=0``)."""
    return [line for line in run.stderr.splitlines() if ":CONSOLE" in line]


def test_console_errors_are_seen(tmp_path) -> None:
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>undefinedFunction();</script></body></html>")
    (line,) = console_lines(chromium(tmp_path, "--dump-dom", page.as_uri()))
    assert "Uncaught ReferenceError: undefinedFunction is not defined" in line


def test_chromium_draws_the_page_without_console_errors(tmp_path) -> None:
    page = tmp_path / "gate.html"
    page.write_text(render_html(gate_result(), "quality_gate", NOW), encoding="utf-8")
    url = page.as_uri()
    dom = chromium(tmp_path, "--dump-dom", url)
    assert 'id="verdict"' in dom.stdout and ">FAIL<" in dom.stdout
    for section in ("actions", "confidence", "agreement", "models"):
        assert f'id="{section}"' in dom.stdout
    assert len(re.findall(r"<svg[ >]", dom.stdout)) == 3
    shot = tmp_path / "shot.png"
    drawn = chromium(tmp_path, f"--screenshot={shot}", url)
    assert console_lines(dom) == [] and console_lines(drawn) == []
    pixels = imread(shot)
    assert pixels.shape[:2] == (900, 1200)
    colours = np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)
    assert len(colours) > 10  # text, bars, bands: far from a blank page


def test_chromium_draws_the_compare_page_without_console_errors(tmp_path) -> None:
    page = tmp_path / "compare.html"
    page.write_text(render_html(compared(), "compare", NOW), encoding="utf-8")
    dom = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert ">DECIDED<" in dom.stdout
    for section in ("accuracy", "paired", "calibration", "actions", "confidence", "agreement"):
        assert f'id="{section}"' in dom.stdout
    assert len(re.findall(r"<svg[ >]", dom.stdout)) == 5
    assert console_lines(dom) == []


def test_chromium_draws_the_monitor_timeline_without_console_errors(tmp_path, monkeypatch) -> None:
    timeline = read_timeline(str(watched(tmp_path, monkeypatch)), host="a")
    page = tmp_path / "timeline.html"
    page.write_text(render_timeline(timeline), encoding="utf-8")
    shot = tmp_path / "shot.png"
    run = chromium(tmp_path, "--dump-dom", f"--screenshot={shot}", page.as_uri())  # one start
    assert ">ROLLED BACK<" in run.stdout
    for section in ("malformed", "outcome", "host-0", "violations"):
        assert f'id="{section}"' in run.stdout
    assert len(re.findall(r"<svg[ >]", run.stdout)) == 1
    assert console_lines(run) == []
    pixels = imread(shot)
    assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 10
