"""Documentation of the engine's systemd unit option, one text for every module that takes it
(ansible_support.SITE_ARGUMENT_SPEC["unit"]).

DOCUMENTATION documents it as O(unit); SERVICE as O(service), the name the modules that also
return the service's state give it.
"""


def _unit_option(name: str) -> str:
    return f"""
options:
  {name}:
    description: The systemd unit of the engine.
    type: str
    default: quantum-ai-engine.service
"""


class ModuleDocFragment:
    DOCUMENTATION = _unit_option("unit")
    SERVICE = _unit_option("service")
