"""Documentation of the options of the modules that prove a start (engine_proof) and that stop,
start and prove it (engine_change, engine_rollback): PROOF (C(model_safety_restart.proof)) the
proof's options, DOCUMENTATION (C(model_safety_restart)) the restart's, which engine_change and
engine_rollback take with the proof's (ansible_support.PROOF_ARGUMENT_SPEC,
RESTART_ARGUMENT_SPEC). Each text is one literal string: ansible-test's yamllint sanity test
reads only those."""


class ModuleDocFragment:
    PROOF = r"""
options:
  checkout:
    description: The engine's deployed git checkout, whose HEAD the start's build must be.
    type: path
    default: /home/qt/quantum_trader
  journal_timeout:
    description:
      - Seconds (0 to 3600) to wait for the start-up lines (C(AI_ENGINE_BUILD), C([READY])) in
        the start's journal.
    type: float
    default: 30
"""

    DOCUMENTATION = r"""
options:
  cycle_timeout:
    description: Seconds (0 to 3600) to wait, after C(systemctl start), for a new invocation to run.
    type: float
    default: 60
"""
