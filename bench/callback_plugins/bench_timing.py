"""Ansible callback for bench/fleet.py: when each task of a run started, in one JSON file.

Enabled only on purpose (ANSIBLE_CALLBACKS_ENABLED=bench_timing, ANSIBLE_CALLBACK_PLUGINS=
bench/callback_plugins); it writes to BENCH_TIMING_FILE when the playbook ends. A task's time
is from its start to the next task's start (or the end of the run): everything Ansible does
for it, on every host of its batch, is in it.
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: bench_timing
type: aggregate
short_description: each task's start time and file, for bench/fleet.py
description:
  - Writes the run's start, each task's name, file and start, and the run's end (wall clock,
    seconds since the epoch) as JSON to the file named by BENCH_TIMING_FILE.
requirements:
  - enabled in ANSIBLE_CALLBACKS_ENABLED
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timing"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._started = time.time()
        self._tasks: list[dict] = []

    def v2_playbook_on_start(self, playbook) -> None:
        self._started = time.time()

    def v2_playbook_on_task_start(self, task, is_conditional) -> None:
        self._tasks.append(
            {"name": task.get_name(), "path": task.get_path() or "", "start": time.time()}
        )

    def v2_playbook_on_handler_task_start(self, task) -> None:
        self.v2_playbook_on_task_start(task, False)

    def v2_playbook_on_stats(self, stats) -> None:
        path = os.environ.get("BENCH_TIMING_FILE")
        if path:
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(
                    {"start": self._started, "tasks": self._tasks, "end": time.time()}, handle
                )
