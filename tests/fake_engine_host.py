"""A fake engine host for the unit tests of the code that stops, starts and proves the engine:
systemctl, journalctl and git answered as a host running the reference engine (lab/ai_engine)
would, with the start-up lines that engine logs for the env file on disk."""

from __future__ import annotations

from pathlib import Path

from ai_engine.config import ConfigError, load_config
from ai_engine.service import ready_line, startup_lines
from model_safety.engine.envfile import env_values
from model_safety.engine.systemd import SHOW_PROPERTIES

UNIT = "quantum-ai-engine.service"
SHA = "5b6966a0c1d2e3f405162738495a6b7c8d9e0f1a"
BASELINE = {"xgb": 0.25, "lgbm": 0.25, "nhits": 0.30, "patchtst": 0.20}
SHOW = ["systemctl", "show", UNIT, "--property=" + ",".join(SHOW_PROPERTIES)]


class FakeHost:
    """systemctl, journalctl and git of one engine host. A start runs the reference engine's
    configuration of the env file on disk over the ``Environment="K=V"`` lines of the drop-ins
    in ``dropin_dir`` (as systemd merges them: the file wins): its journal is the lines that
    engine logs (with ``build`` as AI_ENGINE_BUILD), and a configuration it refuses (or
    SIM_FAIL_START) fails the start. ``crash_in_settle`` makes systemd restart the new start
    once it has been read running."""

    def __init__(self, env_file: Path, dropin_dir: Path | None = None) -> None:
        self.env_file = env_file
        self.dropin_dir = dropin_dir
        self.build = SHA[:7]
        self.invocations = 0
        self.invocation = self.new_invocation()
        self.journals = {self.invocation: self.start_lines()[1]}
        self.state = {"ActiveState": "active", "SubState": "running", "MainPID": "100"}
        self.restarts = 0
        self.crash_in_settle = False
        self.calls: list[list[str]] = []

    def new_invocation(self) -> str:
        self.invocations += 1
        return f"{self.invocations:032x}"

    def dropin_environment(self) -> dict[str, str]:
        if self.dropin_dir is None or not self.dropin_dir.is_dir():
            return {}
        found = {}
        for dropin in sorted(self.dropin_dir.glob("*.conf")):
            for line in dropin.read_text().splitlines():
                if line.startswith('Environment="') and line.endswith('"'):
                    key, _, value = line[len('Environment="') : -1].partition("=")
                    found[key] = value
        return found

    def start_lines(self) -> tuple[bool, list[str]]:
        env = {**self.dropin_environment(), **env_values(self.env_file.read_text())}
        lines = [f"AI_ENGINE_BUILD: {self.build}"]
        try:
            config = load_config(env)
        except ConfigError as exc:
            return False, [*lines, f"[ERROR] config: {exc}"]
        if config.fail_start:
            return False, [*lines, "[ERROR] simulated start failure (SIM_FAIL_START=1)"]
        return True, [*lines, *startup_lines(config), ready_line(config)]

    def show(self) -> str:
        properties = {
            "Id": UNIT,
            "LoadState": "loaded",
            **self.state,
            "NRestarts": str(self.restarts),
            "InvocationID": self.invocation,
            "ActiveEnterTimestamp": "Mon 2026-11-23 18:01:02 UTC",
            "ActiveEnterTimestampMonotonic": "123456789",
            "Result": "success",
        }
        return "".join(f"{key}={value}\n" for key, value in properties.items())

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        assert isinstance(argv, list) and all(isinstance(arg, str) for arg in argv)
        assert "restart" not in argv, "never systemctl restart"
        self.calls.append(argv)
        if argv[0] == "git":
            return self.git(argv[argv.index("-c") + 2 :])
        if argv[0] == "journalctl":
            invocation = argv[-1].removeprefix("_SYSTEMD_INVOCATION_ID=")
            return 0, "\n".join(self.journals.get(invocation, [])) + "\n", ""
        verb = argv[1]
        if verb == "daemon-reload":
            return 0, "", ""
        if verb == "stop":
            self.state = {"ActiveState": "inactive", "SubState": "dead", "MainPID": "0"}
            return 0, "", ""
        if verb == "start":
            return self.start()
        if argv == SHOW:
            shown = self.show()
            if self.crash_in_settle and self.state["ActiveState"] == "active":
                self.restarts, self.state["MainPID"] = self.restarts + 1, "4343"
            return 0, shown, ""
        if "--property=Environment,EnvironmentFiles" in argv:
            environment = " ".join(f"{k}={v}" for k, v in self.dropin_environment().items())
            files = f"{self.env_file} (ignore_errors=no)"
            return 0, f"Environment={environment}\nEnvironmentFiles={files}\n", ""
        if "--property=ActiveEnterTimestamp" in argv:
            return 0, "ActiveEnterTimestamp=Mon 2026-11-23 18:01:02.123456 UTC\n", ""
        raise AssertionError(f"unexpected command {argv}")

    def start(self) -> tuple[int, str, str]:
        self.invocation = self.new_invocation()
        started, self.journals[self.invocation] = self.start_lines()
        if not started:
            self.state = {"ActiveState": "failed", "SubState": "failed", "MainPID": "0"}
            return 1, "", f"Job for {UNIT} failed because the control process exited."
        self.state = {"ActiveState": "active", "SubState": "running", "MainPID": "4242"}
        return 0, "", ""

    @staticmethod
    def git(args: list[str]) -> tuple[int, str, str]:
        answers = {
            ("rev-parse", "--verify", "HEAD^{commit}"): SHA,
            ("rev-parse", "--short", SHA): SHA[:7],
            ("status", "--porcelain", "--untracked-files=no"): "",
            ("symbolic-ref", "--quiet", "--short", "HEAD"): "main",
        }
        return 0, answers[tuple(args)] + "\n", ""

    def verbs(self) -> list[str]:
        """The systemctl verbs that change something, in order."""
        return [argv[1] for argv in self.calls if argv[0] == "systemctl" and argv[1] != "show"]
