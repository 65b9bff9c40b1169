"""The fleet status page as headless Debian Chromium draws it: the hosts' cards and the link
to a report copy in its DOM, no console errors, a screenshot that is not blank. About 1 s."""

from __future__ import annotations

import numpy as np
from matplotlib.image import imread

from model_safety.fleet.page import write_status_page

from .test_html_report_browser import chromium, console_lines
from .test_status_page import GATE_MD, NOW, sample_fleet


def test_chromium_draws_the_status_page_without_console_errors(tmp_path) -> None:
    page = tmp_path / "fleet.html"
    write_status_page(str(page), sample_fleet(), NOW)
    shot = tmp_path / "shot.png"
    # One run both dumps the DOM and takes the screenshot (half the time of two).
    dom = chromium(tmp_path, "--dump-dom", f"--screenshot={shot}", page.as_uri())
    for index in range(1, 5):
        assert f'id="host-{index}"' in dom.stdout
    assert dom.stdout.count(">NO STATUS<") == 2 and dom.stdout.count(">HEALTHY<") == 2
    assert f'href="fleet_reports/qlab4/{GATE_MD}"' in dom.stdout
    assert console_lines(dom) == []
    pixels = imread(shot)
    assert pixels.shape[:2] == (900, 1200)
    colours = np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)
    assert len(colours) > 10  # text, state badges, table borders: far from a blank page
