"""Documentation of what a start must show of one model: one text for engine_proof and
engine_change, which take these options (ansible_support.EXPECTATION_ARGUMENT_SPEC)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  model:
    description: The model whose role the start-up lines must show; empty for none.
    type: str
    default: ""
  role:
    description: The role O(model) must have.
    type: str
    choices: [voting, shadow]
    default: voting
  weight:
    description: The weight O(model) must vote with (a fraction); not given, any weight.
    type: float
  weights:
    description:
      - With O(canary), the full weight vector the C([CANARY]) line and the voters must show.
    type: dict
    default: {}
  canary:
    description: Whether the start must log the C([CANARY]) line of O(model) with O(weights).
    type: bool
    default: false
  conf_cap:
    description:
      - The confidence cap the C([OK]) line of O(model) (a voter) must end with, C(conf_cap=<cap>),
        in (0, 1]; not given, not checked here (the proof of the files' config still requires
        the cap of the canary drop-in's C(QSC_CANARY_CONF_CAP), and none without it).
    type: float
  model_file:
    description:
      - The model file the start must log as loaded, with its C(path) and C(sha256); empty for
        none.
    type: dict
    default: {}
"""
