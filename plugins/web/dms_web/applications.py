"""Network applications in the HMI: the newest Volt-VAR, FLISR and protection results, for the
operator to approve (VVO setpoints), step through (FLISR switching orders) or inspect (protection
coordination, time-current plots), and to run on demand.

:class:`Applications` keeps the newest :class:`~dms_hookspecs.StudyResult` of each study in
:data:`STUDIES`, subscribed to the kernel's bus from the web plugin's startup (results produced
before the first page request are not lost). The operator executes a step through the same
select → confirm → operate dialog as any control (``/api/v1/commands``): every step goes through
the command path with its interlocks and is audited with the user's name.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from dms_hookspecs import StudyResult

from .api import S, api, web_of
from .endpoints import BadRequest, Param, ServiceUnavailable, json_response
from .security import Principal, Role

__all__ = ["Applications", "STUDIES", "applications_for"]

STUDIES = ("vvo", "flisr", "protection_check")
_by_kernel: weakref.WeakKeyDictionary[Any, Applications] = weakref.WeakKeyDictionary()


class Applications:
    """Newest result per application study."""

    def __init__(self) -> None:
        self.latest: dict[str, StudyResult] = {}

    async def on_events(self, events: Sequence[Any]) -> None:
        for event in events:
            if isinstance(event, StudyResult) and event.study in STUDIES:
                self.latest[event.study] = event


def applications_for(kernel: Any) -> Applications:
    """The tracker of ``kernel`` (created and subscribed on first call: call it at startup)."""
    found = _by_kernel.get(kernel)
    if found is None:
        found = _by_kernel[kernel] = Applications()
        kernel.bus.subscribe("web-applications", found.on_events, (StudyResult,), 100)
    return found


def _clean(value: Any) -> Any:
    """JSON-safe copy (NaN/inf -> None, tuples -> lists, numpy scalars -> floats)."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item") and not isinstance(value, str):
        return _clean(value.item())
    return value


_KEEP = {
    "vvo": ("mode", "objective", "band_pu", "before", "after", "objective_before", "objective_after", "setpoints", "operations",
            "power_flows", "seconds", "feasible"),
    "flisr": ("mode", "tripped_name", "faulted", "candidates", "steps", "restored_mw", "unrestored_mw", "restored_customers",
              "unrestored_customers", "after", "notes", "switching_order"),
    "protection_check": ("ok", "violations", "devices", "pairs", "summary"),
}


def summary(result: StudyResult) -> dict[str, Any]:
    data = {k: result.data[k] for k in _KEEP.get(result.study, ()) if k in result.data}
    return _clean({"study": result.study, "solver": result.solver, "converged": result.converged, "message": result.message,
                   "finished": result.finished, "data": data})


STUDY = {"type": "string", "enum": list(STUDIES)}
RESULT = {"type": "object", "properties": {"study": S, "solver": S, "converged": {"type": "boolean"}, "message": S,
                                           "finished": {"type": "number"}, "data": {"type": "object"}}}


@api.endpoint("GET", "/applications", summary="The newest VVO, FLISR and protection results", tag="applications",
              response={"type": "object", "properties": {"results": {"type": "array", "items": RESULT}}})
async def list_results(request: Request, principal: Principal) -> Response:
    tracker = applications_for(request.app.state.kernel)
    return json_response({"results": [summary(tracker.latest[s]) for s in STUDIES if s in tracker.latest]})


@api.endpoint("POST", "/applications/{study}/run", role=Role.ENGINEER, summary="Run an application study now", tag="applications",
              description="Runs `vvo`, `flisr` or `protection_check` on the live model with the deployment's settings "
                          "(a VVO in advisory mode sends nothing; FLISR needs a tripped device).",
              params=(Param("study", STUDY, "the study", where="path", required=True),), response=RESULT)
async def run_study(request: Request, principal: Principal, study: str) -> Response:
    if study not in STUDIES:
        raise BadRequest(f"unknown application study {study!r} (known: {', '.join(STUDIES)})")
    kernel = request.app.state.kernel
    if study not in getattr(kernel, "studies", {}):
        raise ServiceUnavailable(f"no plugin provides the study {study!r} in this deployment")
    web_of(request).audit(principal, "web.study.run", study)
    result = await kernel.run_study(study, {})
    applications_for(kernel).latest[study] = result
    return json_response(summary(result))


@api.endpoint("GET", "/protection/plot", summary="Time-current plot of the devices protecting a node (SVG)", tag="applications",
              params=(Param("node", S, "node mRID or name", required=True),), media=("image/svg+xml",))
async def protection_plot(request: Request, principal: Principal, node: str) -> Response:
    try:
        from dms_protection.plugin import service_for
    except ImportError:
        raise ServiceUnavailable("the protection plugin is not installed") from None
    try:
        service = service_for(request.app.state.kernel)
    except LookupError as exc:
        raise ServiceUnavailable(str(exc)) from None
    try:
        image = await asyncio.to_thread(service.plot, node=node[:200], fmt="svg")
    except (LookupError, ValueError, KeyError) as exc:
        raise BadRequest(f"no plot for node {node!r}: {exc}") from None
    return Response(image, media_type="image/svg+xml")
