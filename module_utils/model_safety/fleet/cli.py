"""``model-safety status --html OUT``: the fleet status page, by running ``playbooks/status.yml``
with ``status_html`` through ansible-runner (:mod:`..playbook_runner`), the one implementation
of the page's data and writing. Prints the page's path.

Exit 0 when every host is healthy, 2 otherwise (a host with a problem or without a status:
the page is still written and says which), and 2 with one sentence for what stops the run
before it starts (an OUT whose directory is missing, an inventory that does not exist, no
playbooks/status.yml in the project directory) or a page that was not written.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Any

from .page import StatusPageError, check_page_path

PLAYBOOK = "status.yml"
PAGE_ACTION = "status_page"
EXIT_HEALTHY, EXIT_PROBLEM = 0, 2


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``status`` subcommand."""
    from ..monitor.cli import PROJECT_ENV

    help_text = (
        "the fleet status page: every engine host's service, build, model roles and weights, "
        "last gate, monitor state, last activation and rollback, and its reports (exit 0 all "
        "healthy, 2 otherwise)"
    )
    parser = subparsers.add_parser("status", help=help_text, description=help_text)
    parser.set_defaults(handler=run_status)
    parser.add_argument(
        "--html",
        metavar="OUT",
        required=True,
        help="write the page here (its reports go to <OUT stem>_reports/ beside it)",
    )
    parser.add_argument("-i", "--inventory", metavar="PATH", help="default: ansible.cfg's")
    parser.add_argument("--limit", metavar="PATTERN", help="only these hosts (Ansible's pattern)")
    parser.add_argument(
        "--project-dir",
        metavar="DIR",
        help=f"checkout with the playbooks (${PROJECT_ENV}, else .)",
    )


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """The run's project dir, inventory and page path; ValueError says what is wrong."""
    from ..monitor.cli import PROJECT_ENV
    from ..monitor.loop import default_inventory

    project_dir = os.path.abspath(args.project_dir or os.environ.get(PROJECT_ENV) or ".")
    if not os.path.isfile(os.path.join(project_dir, "playbooks", PLAYBOOK)):
        raise ValueError(f"no playbooks/{PLAYBOOK} in {project_dir} (give --project-dir)")
    inventory = args.inventory or default_inventory(project_dir)
    if inventory is not None:
        inventory = os.path.abspath(inventory)
        if not os.path.exists(inventory):
            raise ValueError(f"the inventory {inventory} does not exist")
    try:
        page = check_page_path(os.path.abspath(args.html))
    except StatusPageError as exc:
        raise ValueError(str(exc)) from None
    return {"project_dir": project_dir, "inventory": inventory, "page": page}


def run_status(args: argparse.Namespace) -> int:
    """The ``status`` handler."""
    from ..playbook_runner import run_playbook

    try:
        settings = _settings(args)
    except ValueError as exc:
        print(f"model-safety status: {exc}", file=sys.stderr)
        return EXIT_PROBLEM
    with tempfile.TemporaryDirectory(prefix="model-safety-status-") as private_dir:
        run = run_playbook(
            settings["project_dir"],
            PLAYBOOK,
            private_dir=private_dir,
            kind="status",
            inventory=settings["inventory"],
            limit=args.limit,
            extravars={"status_html": settings["page"]},
            collect=(PAGE_ACTION,),
        )
    written = next(
        (result[PAGE_ACTION] for result in run.results.values() if PAGE_ACTION in result), None
    )
    if written is None:
        reasons = "; ".join(f"{host}: {why}" for host, why in run.failures.items())
        print(
            f"model-safety status: the page was not written (run {run.status}"
            + (f"; {reasons}" if reasons else "")
            + ")",
            file=sys.stderr,
        )
        return EXIT_PROBLEM
    print(f"status page: {written['page']}")
    print(f"report copies: {len(written['reports'])}")
    problem_hosts = written["problem_hosts"]
    if problem_hosts:
        print(f"not healthy: {', '.join(problem_hosts)}")
    healthy = run.status == "successful" and not problem_hosts
    if not healthy and not problem_hosts:
        print(f"the status run ended {run.status}: {run.failures}")
    return EXIT_HEALTHY if healthy else EXIT_PROBLEM
