"""Documentation most of the project's modules share: full check mode support, no diff, POSIX
targets, and the author. A module that differs documents only the attribute that differs
(a module's own attributes win over the fragment's)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
author:
  - Model Safety Ops
"""
