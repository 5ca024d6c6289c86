"""Printable switching orders."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["switching_order"]

_PURPOSE = {
    "isolate": "isolate the faulted section",
    "restore-upstream": "restore upstream of the fault",
    "split": "split the dead part between ties",
    "restore-tie": "restore through a tie",
}


def switching_order(network: str, tripped: str, faulted: str, steps: Sequence[Mapping[str, Any]], created: float | None = None) -> str:
    """A numbered switching order as plain text (for printing, the HMI and the historian)."""
    when = dt.datetime.fromtimestamp(created if created is not None else dt.datetime.now().timestamp()).strftime("%Y-%m-%d %H:%M:%S")
    lines = [
        f"SWITCHING ORDER — FLISR — {network}",
        f"created {when}; tripped device: {tripped}; faulted section: {faulted}",
        "",
        f"{'step':>4}  {'action':<6} {'switch':<24} {'point':<24} purpose",
    ]
    for k, step in enumerate(steps, 1):
        lines.append(f"{k:>4}  {step['action'].upper():<6} {step['name'][:24]:<24} {(step.get('point') or '-')[:24]:<24} "
                     f"{_PURPOSE.get(step['purpose'], step['purpose'])}")
    lines += ["", "Each step goes through the command path (authorisation, interlocks, select-before-operate);",
              "stop at the first step that fails."]
    return "\n".join(lines)
