"""The integration REST API under ``/api/v1``: points, model, topology, alarms, commands.

Work orders, historian queries, CIM export, meter readings and reports are in
:mod:`dms_web.api_ops`; the OpenAPI document is built from the same declarations
(:mod:`dms_web.openapi`)."""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from typing import Any

import attrs
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from dms_hookspecs import AlarmPriority, Command, PointKind

from .endpoints import API, BadRequest, Param, ServiceUnavailable, json_response, parse_time
from .historian import historian_target
from .security import Principal, Role

__all__ = ["api", "routes"]

api = API()

S = {"type": "string"}
N = {"type": "number"}
I = {"type": "integer"}  # noqa: E741
B = {"type": "boolean"}
NULLABLE_N = {"type": ["number", "null"]}
POINT = {
    "type": "object",
    "properties": {"name": S, "number": I, "kind": S, "unit": S, "source": S, "controllable": B, "select_before_operate": B,
                   "description": S, "value": NULLABLE_N, "quality": I, "good": B, "source_time": NULLABLE_N},
}
ERROR = {"type": "object", "properties": {"error": S}}


def web_of(request: Request) -> Any:
    return request.app.state.web


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def point_row(kernel: Any, number: int) -> dict[str, Any]:
    database = kernel.points
    spec = database.spec(number)
    m = database.read(number)
    bits = int(database.quality([number])[0]) if hasattr(database, "quality") else 0
    return {
        "name": str(spec.id), "number": number, "kind": spec.kind.value, "unit": spec.unit, "source": database.owner(number),
        "controllable": spec.controllable, "select_before_operate": spec.select_before_operate, "description": spec.description,
        "value": _finite(m.value), "quality": bits, "good": bits == 0, "source_time": _finite(m.source_time),
    }


def _number(kernel: Any, name: str) -> int:
    if name not in kernel.points:
        from starlette.exceptions import HTTPException

        raise HTTPException(404, f"no point named {name[:200]!r}")
    return kernel.points.number(name)


# -- who am I ------------------------------------------------------------------------------


@api.endpoint("GET", "/me", summary="The authenticated user or token and its role", tag="session",
              response={"type": "object", "properties": {"name": S, "role": S, "kind": S}})
async def me(request: Request, principal: Principal) -> Response:
    return json_response({"name": principal.name, "role": principal.role.label, "kind": principal.kind})


# -- points --------------------------------------------------------------------------------


@api.endpoint("GET", "/points", summary="Points with their current values", tag="points",
              params=(Param("filter", S, "substring of the point name (case-insensitive)"),
                      Param("source", S, "owning source"),
                      Param("kind", {"type": "string", "enum": [k.value for k in PointKind]}, "point kind"),
                      Param("controllable", B, "only (non-)controllable points"),
                      Param("limit", {"type": "integer", "minimum": 1, "maximum": 10000, "default": 1000}),
                      Param("offset", {"type": "integer", "minimum": 0, "default": 0})),
              response={"type": "object", "properties": {"total": I, "points": {"type": "array", "items": POINT}}})
async def list_points(request: Request, principal: Principal, filter: str | None, source: str | None, kind: str | None,
                      controllable: bool | None, limit: int, offset: int) -> Response:
    kernel = request.app.state.kernel
    database = kernel.points
    needle = (filter or "").lower()
    matches = []
    for number, name in enumerate(database.names):
        if needle and needle not in name.lower():
            continue
        if source is not None and database.owner(number) != source:
            continue
        spec = database.spec(number)
        if kind is not None and spec.kind.value != kind or controllable is not None and spec.controllable != controllable:
            continue
        matches.append(number)
    return json_response({"total": len(matches), "points": [point_row(kernel, n) for n in matches[offset:offset + limit]]})


@api.endpoint("GET", "/points/{name:path}/history", summary="A point's values from the historian", tag="points",
              params=(Param("name", S, "point name (may contain '/')", where="path", required=True),
                      Param("since", S, "start: epoch seconds or ISO 8601 (default: an hour ago)"),
                      Param("until", S, "end: epoch seconds or ISO 8601 (default: now)"),
                      Param("aggregate", {"type": "string", "enum": ["raw", "1min", "15min"], "default": "raw"})),
              response={"$ref": "#/components/schemas/Series"})
async def point_history(request: Request, principal: Principal, name: str, since: str | None, until: str | None, aggregate: str) -> Response:
    _number(request.app.state.kernel, name)
    series = await _series(request, [name], since, until, aggregate)
    return json_response(series[name])


@api.endpoint("GET", "/points/{name:path}", summary="One point with its current value", tag="points",
              params=(Param("name", S, "point name (may contain '/')", where="path", required=True),), response=POINT)
async def get_point(request: Request, principal: Principal, name: str) -> Response:
    kernel = request.app.state.kernel
    return json_response(point_row(kernel, _number(kernel, name)))


async def _series(request: Request, points: list[str], since: str | None, until: str | None, aggregate: str) -> dict[str, Any]:
    from dms_sqlhistorian import query

    now = time.time()
    t1 = parse_time(until, "until") or now
    t0 = parse_time(since, "since")
    t0 = t1 - 3600.0 if t0 is None else t0
    if t0 > t1:
        raise BadRequest("'since' is after 'until'")
    target = historian_target(web_of(request))
    found = await asyncio.to_thread(query.series, target, points, t0, t1, aggregate=aggregate)
    out = {}
    for name, s in found.items():
        entry: dict[str, Any] = {"point": name, "aggregate": s.aggregate, "since": t0, "until": t1,
                                 "time": s.time.tolist(), "value": s.value.tolist(), "quality": s.quality.tolist()}
        if s.count is not None:
            entry.update(count=s.count.tolist(), min=s.min.tolist(), max=s.max.tolist())
        out[name] = entry
    return out


# -- model and topology --------------------------------------------------------------------


def _model(request: Request) -> Any:
    model = request.app.state.kernel.model
    if model is None or not hasattr(model, "of_type"):
        raise ServiceUnavailable("this deployment has no network model ([deployment] model)")
    return model


def _element(model: Any, obj: Any, topology: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"mrid": obj.mrid, "name": obj.name, "type": type(obj).__name__}
    if hasattr(obj, "terminals"):
        row["nodes"] = [n for n in model.nodes_of(obj) if n is not None]
        if topology is not None:
            row["energised"] = bool(topology.energised(obj.mrid))
    if hasattr(obj, "open") and hasattr(obj, "normal_open"):
        row["open"], row["normal_open"] = bool(obj.open), bool(obj.normal_open)
    return row


def _attributes(obj: Any) -> dict[str, Any]:
    out = {}
    for field in attrs.fields(type(obj)):
        value = getattr(obj, field.name)
        if isinstance(value, str | int | float | bool) or value is None:
            out[field.name] = value
        elif isinstance(value, list | tuple) and all(isinstance(v, str | int | float) or isinstance(v, tuple) for v in value):
            out[field.name] = list(value)
    return out


@api.endpoint("GET", "/model", summary="The network model: name and number of objects per class", tag="model",
              response={"type": "object", "properties": {"name": S, "counts": {"type": "object", "additionalProperties": I}}})
async def model_summary(request: Request, principal: Principal) -> Response:
    model = _model(request)
    return json_response({"name": model.name, "counts": model.counts()})


@api.endpoint("GET", "/model/elements", summary="Network model elements", tag="model",
              params=(Param("type", S, "CIM class name, e.g. Breaker, ACLineSegment, EnergyConsumer"),
                      Param("filter", S, "substring of name or mRID"),
                      Param("limit", {"type": "integer", "minimum": 1, "maximum": 10000, "default": 1000}),
                      Param("offset", {"type": "integer", "minimum": 0, "default": 0})),
              response={"type": "object", "properties": {"total": I, "elements": {"type": "array", "items": {"type": "object"}}}})
async def model_elements(request: Request, principal: Principal, type: str | None, filter: str | None, limit: int, offset: int) -> Response:  # noqa: A002
    model = _model(request)
    topology = request.app.state.kernel.topology
    needle = (filter or "").lower()
    chosen = [o for o in model if (type is None or any(c.__name__ == type for c in o.__class__.__mro__))
              and (not needle or needle in o.name.lower() or needle in o.mrid.lower())]
    return json_response({"total": len(chosen), "elements": [_element(model, o, topology) for o in chosen[offset:offset + limit]]})


@api.endpoint("GET", "/model/elements/{mrid:path}", summary="One model element with its attributes", tag="model",
              params=(Param("mrid", S, "mRID", where="path", required=True),), response={"type": "object"})
async def model_element(request: Request, principal: Principal, mrid: str) -> Response:
    model = _model(request)
    if mrid not in model:
        from starlette.exceptions import HTTPException

        raise HTTPException(404, f"no model element {mrid[:200]!r}")
    obj = model.get(mrid)
    return json_response({**_element(model, obj, request.app.state.kernel.topology), "attributes": _attributes(obj)})


@api.endpoint("GET", "/topology", summary="Energised and de-energised nodes, islands and switch states", tag="topology",
              response={"type": "object", "properties": {
                  "islands": I, "energised_nodes": {"type": "array", "items": S}, "deenergised_nodes": {"type": "array", "items": S},
                  "deenergised_equipment": {"type": "array", "items": S},
                  "island_nodes": {"type": "array", "items": {"type": "array", "items": S}},
                  "switches": {"type": "array", "items": {"type": "object"}}}})
async def topology(request: Request, principal: Principal) -> Response:
    kernel = request.app.state.kernel
    topo = kernel.topology
    if topo is None:
        raise ServiceUnavailable("this deployment has no network model ([deployment] model)")
    switches = [{"mrid": s.mrid, "name": s.name, "type": type(s).__name__, "open": bool(topo.switch_open(s.mrid)),
                 "normal_open": bool(s.normal_open), "energised": bool(topo.energised(s.mrid))} for s in kernel.model.switches()]
    return json_response({
        "islands": topo.island_count, "energised_nodes": sorted(topo.energised_nodes()),
        "deenergised_nodes": sorted(topo.deenergised_nodes()), "deenergised_equipment": sorted(topo.deenergised_equipment()),
        "island_nodes": [sorted(island) for island in topo.islands()], "switches": switches,
    })


# -- alarms --------------------------------------------------------------------------------

PRIORITIES = ["critical", "high", "medium", "low"]
ALARM = {"type": "object", "properties": {"id": S, "state": S, "priority": S, "message": S, "source": S, "category": S,
                                          "point": {"type": ["string", "null"]}, "position": S, "raised_at": NULLABLE_N}}


def _alarms(request: Request) -> Any:
    try:
        from dms_alarms import manager_for

        return manager_for(request.app.state.kernel)
    except (ImportError, LookupError):
        raise ServiceUnavailable("the alarm manager (plugin 'alarms') is not running") from None


@api.endpoint("GET", "/alarms", summary="The alarm list, most urgent first", tag="alarms",
              params=(Param("priority", {"type": "string", "enum": PRIORITIES}, "priority (repeat for several)", multi=True),
                      Param("state", {"type": "string", "enum": ["unacked-active", "acked-active", "unacked-rtn"]}, "ISA-18.2 state", multi=True),
                      Param("source", S), Param("category", S), Param("point", S), Param("position", S, "operator position"),
                      Param("unacknowledged", B, "only unacknowledged alarms"),
                      Param("include_shelved", B, "also shelved alarms"),
                      Param("include_suppressed", B, "also suppressed alarms")),
              response={"type": "object", "properties": {"alarms": {"type": "array", "items": ALARM},
                                                         "counts": {"type": "object", "additionalProperties": I}}})
async def list_alarms(request: Request, principal: Principal, priority: list[str], state: list[str], source: str | None, category: str | None,
                      point: str | None, position: str | None, unacknowledged: bool | None, include_shelved: bool | None,
                      include_suppressed: bool | None) -> Response:
    from dms_alarms import IsaState

    manager = _alarms(request)
    found = manager.active(
        priority=[AlarmPriority[p.upper()] for p in priority] or None,
        state=[IsaState(s) for s in state] or None,
        source=source, category=category, point=point, position=position,
        unacknowledged=bool(unacknowledged), include_shelved=bool(include_shelved), include_suppressed=bool(include_suppressed),
    )
    return json_response({"alarms": [a.as_dict() for a in found], "counts": manager.counts()})


def _alarm_action(verb: str):  # noqa: ANN202
    async def act(request: Request, principal: Principal, alarm_id: str, body: dict[str, Any]) -> Response:
        from dms_alarms import AlarmError, UnknownAlarmError

        manager = _alarms(request)
        try:
            if verb == "acknowledge":
                alarm = manager.acknowledge(alarm_id, principal.actor, str(body.get("comment", "")))
            elif verb == "shelve":
                alarm = manager.shelve(alarm_id, principal.actor, duration_s=float(body.get("duration_s", 3600)), reason=str(body.get("reason", "")))
            else:
                alarm = manager.unshelve(alarm_id, principal.actor)
        except UnknownAlarmError:
            from starlette.exceptions import HTTPException

            raise HTTPException(404, f"no alarm {alarm_id[:100]!r}") from None
        except AlarmError as exc:
            from starlette.exceptions import HTTPException

            raise HTTPException(409, str(exc)) from None
        web_of(request).audit(principal, f"web.alarm.{verb}", alarm_id, alarm.message)
        return json_response(alarm.as_dict())

    return act


_ALARM_ID = Param("alarm_id", S, "alarm id", where="path", required=True)
api.endpoint("POST", "/alarms/{alarm_id}/acknowledge", role=Role.OPERATOR, summary="Acknowledge an alarm", tag="alarms",
             params=(_ALARM_ID,), body={"type": "object", "properties": {"comment": {"type": "string", "maxLength": 500}}},
             response=ALARM)(_alarm_action("acknowledge"))
api.endpoint("POST", "/alarms/{alarm_id}/shelve", role=Role.OPERATOR, summary="Shelve an alarm for a while", tag="alarms",
             params=(_ALARM_ID,), body={"type": "object", "properties": {"duration_s": {"type": "number"}, "reason": {"type": "string", "maxLength": 500}},
                                        "required": ["duration_s"]}, response=ALARM)(_alarm_action("shelve"))
api.endpoint("POST", "/alarms/{alarm_id}/unshelve", role=Role.OPERATOR, summary="Show a shelved alarm again", tag="alarms",
             params=(_ALARM_ID,), body={"type": "object", "properties": {}}, response=ALARM)(_alarm_action("unshelve"))


# -- commands ------------------------------------------------------------------------------


@attrs.frozen
class PendingCommand:
    token: str
    principal: Principal
    point: str
    value: float
    reason: str
    select_before_operate: bool
    expires: float  # monotonic

    @property
    def summary(self) -> str:
        return describe(self.point, self.value, self.kind)

    kind: str = "analog"


def describe(point: str, value: float, kind: str) -> str:
    if kind == "double":
        return f"{'OPEN' if value == 1 else 'CLOSE'} {point}"
    if kind == "binary":
        return f"switch {point} {'ON' if value else 'OFF'}"
    if kind == "step":
        return f"{'RAISE' if value > 0 else 'LOWER'} {point} by {abs(value):g}"
    return f"set {point} to {value:g}"


def _check_value(kind: str, value: float) -> None:
    if kind == "double" and value not in (1, 2):
        raise BadRequest("a double point (breaker, switch) takes 1 (open) or 2 (close)")
    if kind == "binary" and value not in (0, 1):
        raise BadRequest("a binary point takes 0 or 1")
    if kind == "step" and (value != int(value) or value == 0):
        raise BadRequest("a step command takes a non-zero whole number of steps")


COMMAND_RESULT = {"type": "object", "properties": {"command_id": S, "status": S, "reason": S, "step": S, "point": S, "value": N}}


@api.endpoint("POST", "/commands/select", role=Role.OPERATOR, summary="Select a command: returns a confirmation token", tag="commands",
              description="Step 1 of 2. Checks the target and value and returns a token; nothing is sent to the field until "
                          "`/commands/operate` confirms it (by the same user, before `expires_in_s`).",
              body={"type": "object", "properties": {"point": {"type": "string", "maxLength": 500}, "value": N,
                                                     "reason": {"type": "string", "maxLength": 500}}, "required": ["point", "value"]},
              response={"type": "object", "properties": {"token": S, "summary": S, "expires_in_s": N, "point": S, "value": N}})
async def select_command(request: Request, principal: Principal, body: dict[str, Any]) -> Response:
    web = web_of(request)
    kernel = web.kernel
    point, value = str(body["point"]), float(body["value"])
    spec = kernel.points.spec(_number(kernel, point))
    if not spec.controllable:
        from starlette.exceptions import HTTPException

        raise HTTPException(409, f"point {point!r} is not controllable")
    _check_value(spec.kind.value, value)
    now = time.monotonic()
    for token in [t for t, p in web.pending.items() if p.expires < now]:
        del web.pending[token]
    mine = [t for t, p in web.pending.items() if p.principal == principal]
    for token in mine[:-9]:  # at most 10 open selections per user: the oldest go
        del web.pending[token]
    pending = PendingCommand(secrets.token_urlsafe(24), principal, point, value, str(body.get("reason", "")),
                             spec.select_before_operate, now + web.settings.command_confirm_s, spec.kind.value)
    web.pending[pending.token] = pending
    web.audit(principal, "web.command.select", point, f"{pending.summary}; awaiting confirmation")
    return json_response({"token": pending.token, "summary": pending.summary, "expires_in_s": web.settings.command_confirm_s,
                          "point": point, "value": value})


@api.endpoint("POST", "/commands/operate", role=Role.OPERATOR, summary="Confirm a selected command and operate it", tag="commands",
              description="Step 2 of 2: sends the command through the kernel's command path (authorisation, interlocks, "
                          "select-before-operate, the owning source) and returns its result.",
              body={"type": "object", "properties": {"token": {"type": "string", "maxLength": 100}, "confirm": B}, "required": ["token", "confirm"]},
              response=COMMAND_RESULT)
async def operate_command(request: Request, principal: Principal, body: dict[str, Any]) -> Response:
    from starlette.exceptions import HTTPException

    web = web_of(request)
    if body.get("confirm") is not True:
        raise BadRequest("'confirm' must be true")
    pending = web.pending.get(str(body["token"]))
    if pending is None or pending.principal != principal:
        raise HTTPException(404, "no such selected command (wrong token, another user's, or already used)")
    del web.pending[pending.token]
    if pending.expires < time.monotonic():
        web.audit(principal, "web.command.expired", pending.point, pending.summary)
        raise HTTPException(410, "the selection expired; select again")
    command = Command(pending.point, pending.value, select_before_operate=pending.select_before_operate,
                      originator=principal.actor, reason=pending.reason or "operator command from the web HMI")
    web.audit(principal, "web.command.operate", pending.point, f"{pending.summary} (command {command.id})")
    result = await web.kernel.execute(command)
    web.audit(principal, "web.command.result", pending.point, f"{result.status.value}: {result.reason}")
    return json_response({"command_id": command.id, "status": result.status.value, "reason": result.reason, "step": result.step,
                          "point": pending.point, "value": pending.value})


@api.endpoint("POST", "/commands/cancel", role=Role.OPERATOR, summary="Cancel a selected command", tag="commands",
              body={"type": "object", "properties": {"token": {"type": "string", "maxLength": 100}}, "required": ["token"]},
              response={"type": "object", "properties": {"cancelled": B}})
async def cancel_command(request: Request, principal: Principal, body: dict[str, Any]) -> Response:
    web = web_of(request)
    pending = web.pending.get(str(body["token"]))
    if pending is not None and pending.principal == principal:
        del web.pending[pending.token]
        web.audit(principal, "web.command.cancel", pending.point, pending.summary)
        return json_response({"cancelled": True})
    return json_response({"cancelled": False})


def routes() -> list[BaseRoute]:
    from . import api_ops, applications, openapi  # noqa: F401 - they declare their endpoints on `api` when imported

    return [*api.routes(), *openapi.routes(api)]
