"""HTTP control API of a running simulator: inject faults and meter outages, read the twin's state.

    GET    /state                    simulated time, steps, active faults
    POST   /faults     {"element"}   permanent fault on a line (mRID or name): upstream breaker trips
    DELETE /faults/{element}         clear it (the breaker stays open until commanded)
    POST   /outages    {"points"}    meter outage: these points go invalid
    GET    /points/{point}           value, quality bits and timestamp of one point

Served on 127.0.0.1 only (``control_port`` setting; 0 = none).
"""

from __future__ import annotations

import asyncio
import logging

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dms_kernel.model import ModelError

from .grid import GridTwin

__all__ = ["ControlServer", "control_app"]

log = logging.getLogger("leitstand.simulator")


def control_app(twin: GridTwin) -> Starlette:
    async def state(request: Request) -> JSONResponse:
        return JSONResponse({"sim_time": twin.sim_time.isoformat(), "steps": twin.steps, "faults": twin.faults})

    async def add_fault(request: Request) -> JSONResponse:
        body = await _json(request)
        element = body.get("element") if isinstance(body, dict) else None
        if not isinstance(element, str):
            return JSONResponse({"error": 'expected {"element": "<line mRID or name>"}'}, status_code=400)
        try:
            tripped = twin.inject_fault(element)
        except ModelError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        return JSONResponse({"element": element, "tripped": tripped}, status_code=201)

    async def clear_fault(request: Request) -> JSONResponse:
        element = request.path_params["element"]
        try:
            twin.clear_fault(element)
        except ModelError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        return JSONResponse({"element": element, "cleared": True})

    async def outage(request: Request) -> JSONResponse:
        body = await _json(request)
        points = body.get("points") if isinstance(body, dict) else None
        if not isinstance(points, list) or not all(isinstance(p, str) for p in points):
            return JSONResponse({"error": 'expected {"points": ["<point>", ...]}'}, status_code=400)
        unknown = [p for p in points if p not in {s.id.name for s in twin.points()}]
        if unknown:
            return JSONResponse({"error": f"unknown points: {unknown}"}, status_code=404)
        twin.meter_outage(points)
        return JSONResponse({"points": points, "invalid": True}, status_code=201)

    async def point(request: Request) -> JSONResponse:
        name = request.path_params["point"]
        try:
            value, quality, stamp = twin.read(name)
        except KeyError:
            return JSONResponse({"error": f"unknown point {name!r}"}, status_code=404)
        return JSONResponse({"point": name, "value": value, "quality": quality, "source_time": stamp})

    return Starlette(
        routes=[
            Route("/state", state),
            Route("/faults", add_fault, methods=["POST"]),
            Route("/faults/{element:path}", clear_fault, methods=["DELETE"]),
            Route("/outages", outage, methods=["POST"]),
            Route("/points/{point:path}", point),
        ]
    )


async def _json(request: Request) -> object:
    try:
        return await request.json()
    except ValueError:
        return None


class ControlServer:
    """uvicorn serving :func:`control_app` on 127.0.0.1 inside the running event loop."""

    def __init__(self, twin: GridTwin, port: int) -> None:
        config = uvicorn.Config(control_app(twin), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.server.serve(), name="simulator-control")
        while not self.server.started:
            if self._task.done():
                self._task.result()  # raises the bind error
            await asyncio.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.port = port
        log.info("simulator control API on http://127.0.0.1:%d", port)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
