"""Finding the SQL historian of the running kernel (for trends, meter readings, reports)."""

from __future__ import annotations

from typing import Any

from .endpoints import ServiceUnavailable

__all__ = ["historian_target"]


def historian_target(web: Any) -> Any:
    """An SQLAlchemy engine (or URL) to query: ``[settings.web] historian`` names a sink or is a
    URL; by default the first sink with an open engine (the ``sql`` sink type).

    :raises ServiceUnavailable: no historian in this deployment (503).
    """
    kernel, wanted = web.kernel, web.settings.historian
    if wanted and "://" in wanted:
        return wanted
    sinks = getattr(kernel, "sinks", {})
    if wanted:
        sink = sinks.get(wanted)
        if sink is None or getattr(sink, "engine", None) is None:
            raise ServiceUnavailable(f"historian sink {wanted!r} is not running")
        return sink.engine
    for sink in sinks.values():
        if getattr(sink, "engine", None) is not None:
            return sink.engine
    raise ServiceUnavailable("no historian in this deployment (add a [[sinks]] of type 'sql')")
