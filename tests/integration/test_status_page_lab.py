"""`model-safety status --html OUT` for real: playbooks/status.yml through ansible-runner on
this lane's three lab hosts, one of them with an activation, a completed watch and a gate
report on it; the page shows each host, that host's history and links the report copied beside
the page. Then one host's activation log ends in a torn line: it is a problem, the command
exits 2 and the page is still written. About 15 s."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time

import pytest

from tests.local_ansible import ANSIBLE_BIN, REPO_ROOT, printed

pytestmark = pytest.mark.lab

LOG = "/var/log/quantum/qsc_canary.jsonl"
REPORT_DIR = "/var/lib/model-safety/reports"
GATE = "quality_gate_20261205T010000Z"


def status(page, *hosts) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ANSIBLE_BIN / "model-safety"), "status", "--html", str(page),
         "--limit", ",".join(host.name for host in hosts)],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=120, check=False,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg")},
    )  # fmt: skip


def test_status_page_of_the_lane(lab, tmp_path):
    hosts = lab.hosts
    watched = hosts[0]
    records = [
        {"ts": "2026-12-05T01:00:00.000Z", "event": "activation", "model": "patchtst",
         "weight": 0.1, "action": "canary_activated"},
        {"ts": "2026-12-05T01:05:00.000Z", "event": "monitoring_completed",
         "model": "patchtst", "result": "safe", "checks": 12},
    ]  # fmt: skip
    watched.run("mkdir", "-p", REPORT_DIR, os.path.dirname(LOG))
    watched.write_file(LOG, "".join(json.dumps(record) + "\n" for record in records))
    watched.write_file(f"{REPORT_DIR}/{GATE}.md", "# QUALITY GATE PASS <b>\n")
    watched.write_file(
        f"{REPORT_DIR}/{GATE}.json",
        json.dumps({"verdict": "PASS", "mode": "canary", "event_count": 342, "blockers": []}),
    )
    page = tmp_path / "fleet.html"
    try:
        began = time.monotonic()
        run = status(page, *hosts)
        seconds = time.monotonic() - began
        assert run.returncode == 0, printed(run)
        assert run.stdout.startswith(f"status page: {page}\nreport copies: 1\n"), printed(run)
        html = page.read_text()
        assert "3 host(s), 3 healthy" in html and html.count(">HEALTHY<") == 6
        for host in hosts:
            assert f">{host.name}</a>" in html
        card = html[html.index(f">{watched.name} <span") :]
        card = card[: card.index("</section>")]
        assert "canary_activated patchtst at weight 0.1, 2026-12-05T01:00:00.000Z: done" in card
        assert "completed (patchtst) at 2026-12-05T01:05:00.000Z: safe, 12 check(s)" in card
        assert "PASS at 2026-12-05T01:00:00Z (canary, model all, 342 events)" in card
        assert "(verified; git HEAD" in card and "<td>patchtst</td><td>shadow</td>" in card
        link = f"fleet_reports/{watched.name}/{GATE}.md"
        assert f'<a href="{link}">' in card
        copy = tmp_path / link
        assert copy.read_text() == "# QUALITY GATE PASS <b>\n"
        assert stat.S_IMODE(copy.stat().st_mode) == stat.S_IMODE(page.stat().st_mode) == 0o640
        print(f"status page of {len(hosts)} hosts: {seconds:.1f} s, {len(html)} bytes")

        # A torn last line: the newest record cannot be told, the host is not healthy.
        watched.write_file(LOG, json.dumps(records[0]) + "\n" + '{"event": "monitoring_st')
        run = status(page, *hosts)
        assert run.returncode == 2, printed(run)
        assert f"not healthy: {watched.name}\n" in run.stdout
        html = page.read_text()
        assert "3 host(s), 2 healthy" in html and "torn last line" in html
    finally:
        watched.run("rm", "-f", LOG, f"{REPORT_DIR}/{GATE}.md", f"{REPORT_DIR}/{GATE}.json")
