"""Grid views of the web HMI: single-line diagram, geographic map, feeder voltage profile.

:func:`routes` gives the Starlette routes (JSON under ``/grid/api``, pages ``/grid/diagram``,
``/grid/map``, ``/grid/profile``) that the web app mounts under ``/grid``; ``NAV`` their menu
entries. The model-side builders (:func:`build_diagram`, :func:`build_geojson`,
:func:`feeder_profile`) work on a :class:`~dms_kernel.model.NetworkModel` alone.
"""

from .diagram import build_diagram, diagram_state
from .geo import build_geojson
from .profile import feeder_list, feeder_profile
from .routes import NAV, routes

__all__ = ["routes", "NAV", "build_diagram", "diagram_state", "build_geojson", "feeder_list", "feeder_profile"]
