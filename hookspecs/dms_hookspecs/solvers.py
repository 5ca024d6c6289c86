"""Solver hooks: named studies on the network model (power flow, state estimation, …) and result checks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .markers import hookspec

if TYPE_CHECKING:
    from .api import KernelAPI, Snapshot
    from .types import Alarm, StudyResult


@hookspec
def dms_studies() -> Sequence[str]:
    """Name the studies this plugin can run, e.g. ``["power_flow", "short_circuit"]``.

    Called at startup; a job in the deployment file naming a study that no plugin lists
    is a configuration error.

    :return: study names.
    """


@hookspec(firstresult=True)
def dms_run_study(study: str, model: Any, snapshot: Snapshot, options: Mapping[str, Any]) -> StudyResult | None:
    """Run the study ``study`` and return its result.

    ``firstresult``: the first implementation returning a result wins, so a plugin
    replaces the default solver by returning a result for the same study (built-in solvers
    are registered ``trylast``). Return ``None`` for studies you do not handle.
    Synchronous implementations run in a worker thread, so ingest continues meanwhile.
    A plugin that lists its studies in :func:`dms_studies` is asked only for those; a plugin
    without ``dms_studies`` is asked for every study.

    :param study: the study's name.
    :param model: the deployment's network model (``None`` if the deployment has none).
    :param snapshot: a consistent snapshot of the point database.
    :param options: job options from the deployment file.
    :return: the result, or ``None`` to let another plugin handle it.
    """


@hookspec
def dms_check_result(result: StudyResult, model: Any, kernel: KernelAPI) -> Sequence[Alarm] | None:
    """Check a study result (limit checks: voltage band, thermal loading, reverse flow).

    Called by the kernel after every study result, before ``dms_propose_actions``. The
    returned alarms are published to all sinks (raised and cleared limit violations).

    :param result: the study result.
    :param model: the network model the study ran on (``None`` if the deployment has none).
    :param kernel: the kernel (for ``settings_for``); keep per-kernel state keyed by it.
    :return: alarms to publish, or ``None``.
    """
