"""Example third-party Leitstand plugin: a set-point limit and blocked-point interlock.

The hook implementations live in :mod:`leitstand_example_interlock.plugin`, the module the
``dms.plugins`` entry point names.
"""

__version__ = "0.1.0"
