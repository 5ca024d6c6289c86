"""REST endpoints for operations and integration: incidents and work orders, historian
queries, CIM export, IEC 61968-9 meter readings, daily reports (declared on :data:`dms_web.api.api`)."""

from __future__ import annotations

import asyncio
import enum
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from .api import B, I, N, S, _series, api, web_of
from .endpoints import BadRequest, Param, ServiceUnavailable, json_response, parse_time
from .historian import historian_target
from .meter import meter_points, reading, to_xml
from .security import Principal, Role

# -- incidents and work orders -------------------------------------------------------------

ORDER_STATES = ["new", "assigned", "dispatched", "en_route", "on_site", "resolved", "closed", "cancelled"]


def _workorders(request: Request) -> Any:
    try:
        from dms_workorders import service_for

        return service_for(request.app.state.kernel)
    except (ImportError, LookupError):
        raise ServiceUnavailable("the work-order service (plugin 'workorders') is not running") from None


def _record(obj: Any) -> dict[str, Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, enum.Enum):
            return value.value
        if isinstance(value, frozenset | set):
            return sorted(value)
        return value

    return {k: convert(v) for k, v in attrs.asdict(obj, recurse=False).items()}


async def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    from dms_workorders import UnknownRecord, WorkflowError

    try:
        return await asyncio.to_thread(function, *args, **kwargs)
    except UnknownRecord as exc:
        raise HTTPException(404, str(exc)) from None
    except WorkflowError as exc:
        raise HTTPException(409, str(exc)) from None


OBJ = {"type": "object"}
LIST_OF = lambda key: {"type": "object", "properties": {key: {"type": "array", "items": OBJ}}}  # noqa: E731


@api.endpoint("GET", "/incidents", summary="Incidents, oldest first", tag="workorders",
              params=(Param("status", {"type": "string", "enum": ["open", "closed"]}),), response=LIST_OF("incidents"))
async def list_incidents(request: Request, principal: Principal, status: str | None) -> Response:
    found = await _call(_workorders(request).incidents, status=status)
    return json_response({"incidents": [_record(i) for i in found]})


@api.endpoint("POST", "/incidents", role=Role.OPERATOR, summary="Open an incident", tag="workorders",
              body={"type": "object", "properties": {"title": {"type": "string", "maxLength": 500}, "element": {"type": "string", "maxLength": 200},
                                                     "priority": I}, "required": ["title"]}, response=OBJ)
async def create_incident(request: Request, principal: Principal, body: dict[str, Any]) -> Response:
    title = str(body["title"]).strip()
    if not title:
        raise BadRequest("body field 'title' is empty")
    incident = await _call(_workorders(request).create_incident, title, element=body.get("element") or None,
                           priority=int(body.get("priority", 3)), user=principal.actor)
    web_of(request).audit(principal, "web.incident.create", str(incident.id), title)
    return json_response(_record(incident), 201)


@api.endpoint("GET", "/workorders", summary="Work orders, oldest first", tag="workorders",
              params=(Param("state", {"type": "string", "enum": ORDER_STATES}), Param("incident", I), Param("crew", S)),
              response=LIST_OF("orders"))
async def list_orders(request: Request, principal: Principal, state: str | None, incident: int | None, crew: str | None) -> Response:
    found = await _call(_workorders(request).orders, state=state, incident=incident, crew=crew)
    return json_response({"orders": [_record(o) for o in found]})


@api.endpoint("POST", "/workorders", role=Role.OPERATOR, summary="Create a work order for an open incident", tag="workorders",
              body={"type": "object", "properties": {"incident": I, "description": {"type": "string", "maxLength": 1000},
                                                     "skills": {"type": "array", "items": S}}, "required": ["incident"]}, response=OBJ)
async def create_order(request: Request, principal: Principal, body: dict[str, Any]) -> Response:
    skills = [str(s)[:50] for s in body.get("skills", [])][:20]
    order = await _call(_workorders(request).create_order, int(body["incident"]), description=str(body.get("description", "")),
                        skills=skills, user=principal.actor)
    web_of(request).audit(principal, "web.workorder.create", str(order.id), order.description)
    return json_response(_record(order), 201)


@api.endpoint("POST", "/workorders/{order_id:int}/transition", role=Role.OPERATOR, summary="Move a work order to another state", tag="workorders",
              description="`assigned` assigns a crew (`crew`, or `auto` for the nearest qualified crew on shift).",
              params=(Param("order_id", I, "work order id", where="path", required=True),),
              body={"type": "object", "properties": {"state": {"type": "string", "enum": ORDER_STATES}, "note": {"type": "string", "maxLength": 1000},
                                                     "crew": {"type": "string", "maxLength": 100}}, "required": ["state"]}, response=OBJ)
async def transition_order(request: Request, principal: Principal, order_id: int, body: dict[str, Any]) -> Response:
    service = _workorders(request)
    note = str(body.get("note", ""))
    if body["state"] == "assigned":
        order = await _call(service.assign, order_id, str(body.get("crew") or "auto"), user=principal.actor, note=note)
    else:
        order = await _call(service.transition, order_id, body["state"], user=principal.actor, note=note)
    web_of(request).audit(principal, "web.workorder.transition", str(order_id), f"→ {body['state']} {note}".strip())
    return json_response(_record(order))


@api.endpoint("GET", "/crews", summary="Crews with skills, shifts and positions", tag="workorders", response=LIST_OF("crews"))
async def list_crews(request: Request, principal: Principal) -> Response:
    return json_response({"crews": [_record(c) for c in await _call(_workorders(request).crews)]})


# -- historian -----------------------------------------------------------------------------

SERIES = {"type": "object", "properties": {"point": S, "aggregate": S, "since": N, "until": N,
                                           "time": {"type": "array", "items": N}, "value": {"type": "array", "items": {"type": ["number", "null"]}},
                                           "quality": {"type": "array", "items": I}}}


@api.endpoint("GET", "/historian/series", summary="Time series of several points from the historian", tag="historian",
              params=(Param("point", S, "point name (repeat for several, at most 20)", multi=True, required=True),
                      Param("since", S, "start: epoch seconds or ISO 8601 (default: an hour before until)"),
                      Param("until", S, "end: epoch seconds or ISO 8601 (default: now)"),
                      Param("aggregate", {"type": "string", "enum": ["raw", "1min", "15min"], "default": "raw"})),
              response={"type": "object", "properties": {"series": {"type": "array", "items": SERIES}}})
async def historian_series(request: Request, principal: Principal, point: list[str], since: str | None, until: str | None, aggregate: str) -> Response:
    if len(point) > 20:
        raise BadRequest("at most 20 points per query")
    found = await _series(request, point, since, until, aggregate)
    return json_response({"series": list(found.values())})


FORECAST = {"type": "object", "properties": {"point": S, "time": {"type": "array", "items": N},
                                             "value": {"type": "array", "items": {"type": ["number", "null"]}},
                                             "issued": {"type": "array", "items": N}, "model": {"type": "array", "items": S}}}


@api.endpoint("GET", "/historian/forecasts", summary="Stored forecasts of points (the newest issue per target time)", tag="historian",
              params=(Param("point", S, "point name (repeat for several, at most 20)", multi=True, required=True),
                      Param("since", S, "first target time: epoch seconds or ISO 8601 (default: an hour before until)"),
                      Param("until", S, "last target time: epoch seconds or ISO 8601 (default: a day after now)")),
              response={"type": "object", "properties": {"forecasts": {"type": "array", "items": FORECAST}}})
async def historian_forecasts(request: Request, principal: Principal, point: list[str], since: str | None, until: str | None) -> Response:
    from dms_sqlhistorian import query

    if len(point) > 20:
        raise BadRequest("at most 20 points per query")
    now = time.time()
    t1 = parse_time(until, "until") or now + 86400.0
    t0 = parse_time(since, "since")
    t0 = t1 - 3600.0 if t0 is None else t0
    if t0 > t1:
        raise BadRequest("'since' is after 'until'")
    target = historian_target(web_of(request))
    found = await asyncio.to_thread(query.forecasts, target, point, t0, t1)
    rows = [{"point": name, "time": f.time.tolist(), "value": f.value.tolist(), "issued": f.issued.tolist(), "model": list(f.model)}
            for name, f in found.items()]
    return json_response({"forecasts": rows})


# -- CIM export ----------------------------------------------------------------------------


@api.endpoint("GET", "/cim/export", role=Role.VIEWER, summary="The current network model as CIM RDF/XML", tag="model",
              description="Written by the installed CIM plugin (`dms_export_model`) with the actual switch states.",
              params=(Param("profile", {"type": "string", "enum": ["cim100", "cgmes"], "default": "cim100"}),),
              media=("application/rdf+xml",))
async def cim_export(request: Request, principal: Principal, profile: str) -> Response:
    kernel = request.app.state.kernel
    if kernel.model is None:
        raise ServiceUnavailable("this deployment has no network model ([deployment] model)")
    with tempfile.TemporaryDirectory(prefix="leitstand-cim-") as folder:
        path = Path(folder) / f"model_{profile}.xml"
        answer = await kernel.host.call_first("dms_export_model", model=kernel.model, path=path, format=profile)
        if answer is None:
            raise ServiceUnavailable(f"no loaded plugin exports CIM profile {profile!r} (is dms-cim installed?)")
        written = Path(answer[1])
        data = await asyncio.to_thread(written.read_bytes)
    web_of(request).audit(principal, "web.cim.export", kernel.model.name, profile)
    filename = f"{kernel.model.name or 'model'}_{profile}.xml".replace('"', "")
    return Response(data, media_type="application/rdf+xml", headers={"Content-Disposition": f'attachment; filename="{filename}"'})


# -- meter readings (IEC 61968-9) ----------------------------------------------------------


@api.endpoint("GET", "/meter-readings", summary="Meter readings as an IEC 61968-9 MeterReadings message", tag="integration",
              description="Readings of meter points (sources matching `[settings.web] meter_sources`) from the historian "
                          "between `since` and `until`; without a historian, or with `latest=true`, the current values.",
              params=(Param("since", S, "start: epoch seconds or ISO 8601 (default: a day before until)"),
                      Param("until", S, "end (default: now)"), Param("meter", S, "only this meter (source name)"),
                      Param("latest", B, "only the current value of each register"),
                      Param("format", {"type": "string", "enum": ["json", "xml"], "default": "json"})),
              media=("application/json", "application/xml"))
async def meter_readings(request: Request, principal: Principal, since: str | None, until: str | None, meter: str | None,
                         latest: bool | None, format: str) -> Response:  # noqa: A002
    web = web_of(request)
    kernel = web.kernel
    meters = meter_points(kernel, web.settings.meter_sources, meter)
    if meter is not None and not meters:
        raise HTTPException(404, f"no meter named {meter[:100]!r}")
    t1 = parse_time(until, "until") or time.time()
    t0 = parse_time(since, "since")
    t0 = t1 - 86400.0 if t0 is None else t0
    database = kernel.points
    history: dict[str, Any] = {}
    if not latest:
        try:
            target = historian_target(web)
        except ServiceUnavailable:
            latest = True
        else:
            from dms_sqlhistorian import query

            names = [p for points in meters.values() for p in points]
            history = await asyncio.to_thread(query.series, target, names, t0, t1) if names else {}
    document: list[dict[str, Any]] = []
    for name, points in sorted(meters.items()):
        readings = []
        for point in points:
            unit = database.spec(point).unit
            if latest:
                m = database.read(point)
                bits = int(database.quality([database.number(point)])[0])
                if m.source_time > 0:
                    readings.append(reading(point, unit, m.source_time, m.value, bits))
            else:
                s = history.get(point)
                for t, v, q in zip(s.time.tolist(), s.value.tolist(), s.quality.tolist(), strict=True) if s is not None else ():
                    readings.append(reading(point, unit, t, v, q))
        from .meter import iso

        document.append({"Meter": {"mRID": name, "name": name}, "valuesInterval": {"start": iso(t0), "end": iso(t1)}, "Readings": readings})
    body = {"MeterReadings": {"MeterReading": document}}
    web.audit(principal, "web.meter_readings.export", meter or "*", f"{sum(len(d['Readings']) for d in document)} readings, {format}")
    if format == "xml":
        return Response(to_xml(body), media_type="application/xml")
    return json_response(body)


# -- reports -------------------------------------------------------------------------------


@api.endpoint("GET", "/reports/daily", summary="Daily SAIFI/SAIDI/CAIDI, losses and limit violations", tag="reports",
              params=(Param("since", S, "first day (epoch seconds or ISO 8601; default: 7 days before until)"),
                      Param("until", S, "end (default: now)"),
                      Param("format", {"type": "string", "enum": ["json", "csv", "pdf"], "default": "json"})),
              media=("application/json", "text/csv", "application/pdf"))
async def daily_report(request: Request, principal: Principal, since: str | None, until: str | None, format: str) -> Response:  # noqa: A002
    from .reports import daily_rows, to_csv, to_pdf

    web = web_of(request)
    t1 = parse_time(until, "until") or time.time()
    t0 = parse_time(since, "since")
    t0 = t1 - 7 * 86400.0 if t0 is None else t0
    if t1 - t0 > 366 * 86400 or t0 > t1:
        raise BadRequest("the period must be between 0 and 366 days")
    try:
        workorders = _workorders(request)
    except ServiceUnavailable:
        workorders = None
    try:
        historian = historian_target(web)
    except ServiceUnavailable:
        historian = None
    rows = await asyncio.to_thread(daily_rows, workorders, historian, t0, t1)
    if format == "csv":
        return Response(to_csv(rows), media_type="text/csv", headers={"Content-Disposition": 'attachment; filename="leitstand-daily.csv"'})
    if format == "pdf":
        pdf = await asyncio.to_thread(to_pdf, rows, web.settings.title, t0, t1)
        return Response(pdf, media_type="application/pdf", headers={"Content-Disposition": 'attachment; filename="leitstand-daily.pdf"'})
    return json_response({"since": t0, "until": t1, "days": rows, "sources": {"workorders": workorders is not None, "historian": historian is not None}})


_ = (B,)
