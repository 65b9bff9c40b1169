"""Documentation of the engine's systemd unit option, one text for every module that takes it
(ansible_support.SITE_ARGUMENT_SPEC["unit"]).

DOCUMENTATION documents it as O(unit); SERVICE as O(service), the name the modules that also
return the service's state give it. Each text is one literal string: ansible-test's yamllint
sanity test reads only those.
"""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  unit:
    description: The systemd unit of the engine.
    type: str
    default: quantum-ai-engine.service
"""

    SERVICE = r"""
options:
  service:
    description: The systemd unit of the engine.
    type: str
    default: quantum-ai-engine.service
"""
