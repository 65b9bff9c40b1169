"""Documentation of the options of the modules that prove a start (engine_proof) and that stop,
start and prove it (engine_change, engine_rollback): one text for each, as their argument
specs are one (ansible_support.PROOF_ARGUMENT_SPEC, RESTART_ARGUMENT_SPEC)."""

_PROOF = r"""
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

_CYCLE = r"""
  cycle_timeout:
    description: Seconds (0 to 3600) to wait, after C(systemctl start), for a new invocation to run.
    type: float
    default: 60
"""


class ModuleDocFragment:
    PROOF = _PROOF
    DOCUMENTATION = _PROOF + _CYCLE
