"""Controller hooks: propose control actions, authorise and interlock commands.

The command path calls, in order: ``dms_authorize_command`` → target check (the point must
exist and be controllable, and its owning source must run) → ``dms_veto_command`` → select
(if select-before-operate) → operate on the owning source. Each step is audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .markers import hookspec

if TYPE_CHECKING:
    from .api import Snapshot
    from .types import Command, ControlAction, PointSpec, StudyResult


@hookspec
def dms_propose_actions(result: StudyResult, snapshot: Snapshot) -> Sequence[ControlAction] | None:
    """Propose control actions after a study result.

    Called for every study result. Proposed actions are emitted to sinks and sent through
    the command path with the controller as originator (interlocks still apply).

    :param result: the study result.
    :param snapshot: the snapshot the study ran on.
    :return: actions, or ``None``/empty for none.
    """


@hookspec
def dms_authorize_command(command: Command) -> str | None:
    """Decide whether the originator may issue this command.

    Called first for every command. Any implementation returning a reason denies the
    command; the result names the plugin and the reason.

    :param command: the command.
    :return: ``None`` to allow, or the reason for denial.
    """


@hookspec
def dms_veto_command(command: Command, point: PointSpec, snapshot: Snapshot) -> str | None:
    """Interlock: veto a command that would be unsafe.

    Called after authorisation for every command, with the target's declaration and a
    fresh snapshot. Any implementation returning a reason vetoes the command.

    :param command: the command.
    :param point: the target point's declaration.
    :param snapshot: current values of all points.
    :return: ``None`` to allow, or the reason for the veto.
    """
