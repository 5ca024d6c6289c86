"""Starlette routes of the grid views, mounted by the web app under ``/grid``.

JSON (all ``GET``):

==============================  =================================================================
``/grid/api/diagram``           the single-line diagram layout (:func:`.diagram.build_diagram`)
``/grid/api/state``             switch states, de-energised nodes/equipment, node voltages of the
                                latest result, voltage bands (``?band=0.95,1.05`` overrides)
``/grid/api/geo``               GeoJSON of the located elements (:func:`.geo.build_geojson`)
``/grid/api/feeders``           the feeders (id, name, head, head node, node count)
``/grid/api/profile/{feeder}``  voltage profile of a feeder (:func:`.profile.feeder_profile`)
``/grid/api/element/{mrid}``    one element: attributes, energised, its measurement points with
                                their values, result values, the trend page URL
==============================  =================================================================

Pages: ``/grid/diagram``, ``/grid/map``, ``/grid/profile`` (``?feeder=``), rendered with the web
plugin's ``base.html``. The routes themselves carry no path prefix: the app mounts them with
``Mount("/grid", routes=routes())``. Authentication is the app's (its middleware); a handler
also asks for the viewer role when the app has a web context.
"""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from dms_kernel.model import ACLineSegment, ConductingEquipment, EnergyConsumer, Measurement, NetworkModel, Switch

from .diagram import build_diagram, diagram_state, node_voltages
from .geo import build_geojson
from .latest import bands_for, tracker
from .network import element_kind, equipment_nodes, measurement_points, node_kv
from .profile import ProfileError, feeder_list, feeder_profile

__all__ = ["routes", "NAV"]

#: navigation entries the web app adds to its menu
NAV: list[tuple[str, str]] = [("Diagram", "/grid/diagram"), ("Map", "/grid/map"), ("Profile", "/grid/profile")]

_cache: weakref.WeakKeyDictionary[NetworkModel, dict[str, tuple[int, Any]]] = weakref.WeakKeyDictionary()


def _cached(model: NetworkModel, key: str, build: Callable[[NetworkModel], Any]) -> Any:
    """``build(model)`` once per model and object count (layouts use normal states only)."""
    slot = _cache.setdefault(model, {})
    found = slot.get(key)
    if found is None or found[0] != len(model):
        found = (len(model), build(model))
        slot[key] = found
    return found[1]


def _default_kernel(request: Request) -> Any:
    kernel = getattr(request.app.state, "kernel", None)
    if kernel is None:
        raise HTTPException(503, "no kernel")
    return kernel


def _authorise(request: Request) -> None:
    if getattr(request.app.state, "web", None) is None:
        return  # mounted without the web app (tests, embedding): its owner authenticates
    from ..auth import require

    require(request)


def _json(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status, headers={"Cache-Control": "no-store"})


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def routes(get_kernel: Callable[[], Any] | None = None) -> list[BaseRoute]:
    """The grid routes; ``get_kernel()`` returns the running kernel (default: ``app.state.kernel``)."""

    def kernel_of(request: Request) -> Any:
        _authorise(request)
        return get_kernel() if get_kernel is not None else _default_kernel(request)

    def model_of(kernel: Any) -> NetworkModel:
        model = getattr(kernel, "model", None)
        if not isinstance(model, NetworkModel):
            raise HTTPException(404, "the deployment has no network model")
        return model

    def bands(kernel: Any, request: Request):  # noqa: ANN202
        try:
            return bands_for(kernel, request.query_params.get("band"))
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None

    async def api_diagram(request: Request) -> Response:
        model = model_of(kernel_of(request))
        return _json(_cached(model, "diagram", build_diagram))

    async def api_state(request: Request) -> Response:
        kernel = kernel_of(request)
        model = model_of(kernel)
        result = tracker(kernel).latest(request.query_params.get("study") or None)
        state = diagram_state(model, getattr(kernel, "topology", None), result)
        state["bands"] = bands(kernel, request).as_json()
        state["time"] = time.time()
        return _json(state)

    async def api_geo(request: Request) -> Response:
        model = model_of(kernel_of(request))
        return _json(_cached(model, "geo", build_geojson))

    async def api_feeders(request: Request) -> Response:
        model = model_of(kernel_of(request))
        return _json({"feeders": feeder_list(model)})

    async def api_profile(request: Request) -> Response:
        kernel = kernel_of(request)
        model = model_of(kernel)
        feeder = request.path_params["feeder"]
        result = tracker(kernel).latest(request.query_params.get("study") or None)
        found = bands(kernel, request)
        try:
            head_kv = None
            profile = feeder_profile(model, feeder, result, found.default)
            kvs = [p["kv"] for p in profile["points"][1:] if p["kv"]]
            head_kv = kvs[0] if kvs else None
            profile["band"] = list(found.band_for(head_kv))
        except ProfileError as exc:
            raise HTTPException(404, str(exc)) from None
        return _json(profile)

    async def api_element(request: Request) -> Response:
        kernel = kernel_of(request)
        model = model_of(kernel)
        mrid = request.path_params["mrid"]
        obj = model.objects.get(mrid)
        if obj is None:
            raise HTTPException(404, f"no element {mrid!r} in the model")
        result = tracker(kernel).latest()
        return _json(element_detail(kernel, model, obj, result))

    async def page_diagram(request: Request) -> Response:
        kernel_of(request)
        return _page(request, "grid_diagram.html", "Single-line diagram")

    async def page_map(request: Request) -> Response:
        kernel_of(request)
        settings = getattr(getattr(request.app.state, "web", None), "settings", None)
        return _page(request, "grid_map.html", "Map", tile_url=getattr(settings, "map_tile_url", None),
                     tile_attribution=getattr(settings, "map_tile_attribution", None))

    async def page_profile(request: Request) -> Response:
        kernel_of(request)
        return _page(request, "grid_profile.html", "Voltage profile", feeder=request.query_params.get("feeder", "")[:200])

    return [
        Route("/api/diagram", api_diagram),
        Route("/api/state", api_state),
        Route("/api/geo", api_geo),
        Route("/api/feeders", api_feeders),
        Route("/api/profile/{feeder:path}", api_profile),
        Route("/api/element/{mrid:path}", api_element),
        Route("/diagram", page_diagram),
        Route("/map", page_map),
        Route("/profile", page_profile),
    ]


def element_detail(kernel: Any, model: NetworkModel, obj: Any, result: Any) -> dict[str, Any]:
    """What the click panel shows for a node or equipment."""
    detail: dict[str, Any] = {"id": obj.mrid, "name": obj.name or obj.mrid, "cim_class": type(obj).__name__}
    topology = getattr(kernel, "topology", None)
    if isinstance(obj, ConductingEquipment):
        detail["kind"] = element_kind(model, obj)
        detail["nodes"] = equipment_nodes(model, obj)
        detail["in_service"] = bool(obj.in_service)
        attributes: dict[str, Any] = {}
        if isinstance(obj, Switch):
            attributes.update(open=bool(obj.open), normal_open=bool(obj.normal_open))
        if isinstance(obj, ACLineSegment):
            attributes.update(length_km=obj.length_km, max_i_ka=_finite(obj.max_i_ka))
        for name in ("p_mw", "q_mvar", "rated_s_mva"):
            if hasattr(obj, name):
                attributes[name] = _finite(getattr(obj, name))
        if isinstance(obj, EnergyConsumer):
            attributes["customer_count"] = obj.customer_count
        detail["attributes"] = attributes
    else:
        detail["kind"] = "node"
        detail["kv"] = node_kv(model).get(obj.mrid)
    if topology is not None:
        try:
            detail["energised"] = bool(topology.energised(obj.mrid))
        except Exception:  # noqa: BLE001 - not a node or equipment the processor knows
            detail["energised"] = None
    # measurement points with their current values
    points = []
    database = getattr(kernel, "points", None)
    measurements: list[Measurement] = measurement_points(model, obj.mrid) if isinstance(obj, ConductingEquipment) else []
    for measurement in measurements:
        entry: dict[str, Any] = {"point": measurement.point_name, "type": measurement.measurement_type, "unit": measurement.unit,
                                 "value": None, "good": None, "time": None}
        if database is not None and measurement.point_name in database:
            value = database.read(measurement.point_name)
            entry.update(value=_finite(float(value.value)), good=value.quality.validity.name == "GOOD",
                         time=_finite(float(value.source_time)))
        points.append(entry)
    detail["points"] = points
    names = [p["point"] for p in points]
    detail["trend_url"] = "/trends?" + urlencode([("point", n) for n in names]) if names else None
    # values of the latest result
    values: dict[str, Any] = {}
    if result is not None:
        if detail["kind"] == "node":
            values["vm_pu"] = node_voltages(result).get(obj.mrid)
        else:
            values.update(_branch_values(result, obj.mrid))
            if "nodes" in detail:
                voltages = node_voltages(result)
                values["vm_pu"] = {n: voltages.get(n) for n in detail["nodes"]}
    detail["result"] = values
    return detail


def _branch_values(result: Any, mrid: str) -> dict[str, Any]:
    data = getattr(result, "data", None) or {}
    table = data.get("branches") if hasattr(data, "get") else None
    if not table or "element" not in table:
        return {}
    out: dict[str, list[Any]] = {}
    columns = [c for c in ("i_ka", "p_from_mw", "q_from_mvar", "p_to_mw", "q_to_mvar", "loading_percent") if c in table]
    values = {c: list(table[c]) for c in columns}
    for k, element in enumerate(list(table["element"])):
        if element != mrid:
            continue
        for column in columns:
            value = values[column][k]
            out.setdefault(column, []).append(None if value is None else _finite(float(value)))
    return out


def _page(request: Request, template: str, heading: str, **context: Any) -> Response:
    """A page from ``dms_web/grid/templates`` with the web plugin's base template."""
    if getattr(request.app.state, "web", None) is not None:
        from ..templating import render

        return render(request, template, heading=heading, **context)
    from ..templating import environment

    base = {"request": request, "title": "Leitstand", "user": None, "role": None, "can_control": False,
            "csrf_token": "", "nav": NAV, "path": request.url.path}
    return HTMLResponse(environment().get_template(template).render({**base, "heading": heading, **context}))
