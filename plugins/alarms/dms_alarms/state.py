"""State-based suppression: alarms on de-energised or isolated equipment, from the topology processor.

An alarm is resolved once, when it is raised, to the network elements it concerns:

* its point → the equipment the point's measurement is bound to (``kernel.live``);
* otherwise names quoted in its message (``voltage … at node 'Bus 5'``, ``Line 'Line 3-4' loaded …``)
  → nodes or equipment of the model with that name or mRID;
* otherwise, for a source's own alarms (comms, quality), the equipment of all points the
  source owns.

It is suppressed while it has elements and none of them is energised
(:meth:`dms_kernel.model.topology.TopologyProcessor.energised`): downstream of an open switch,
or in an island without a source. The kernel keeps the topology processor current from the
switch-position points and publishes :class:`~dms_hookspecs.TopologyChanged`, on which the
manager re-evaluates.
"""

from __future__ import annotations

import re
from typing import Any

from .records import ManagedAlarm

__all__ = ["StateSuppression"]

_QUOTED = re.compile(r"'([^']+)'|\"([^\"]+)\"")


class StateSuppression:
    """Maps alarms to network elements and tells whether they are all de-energised.

    :param kernel: a started kernel with a network model (``kernel.model``, ``kernel.live``,
        ``kernel.topology``); without one nothing is suppressed.
    """

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.topology = getattr(kernel, "topology", None)
        model = getattr(kernel, "model", None)
        live = getattr(kernel, "live", None)
        self._by_point: dict[str, tuple[str, ...]] = {}
        self._by_name: dict[str, str] = {}
        self._known: set[str] = set()
        if self.topology is None or model is None or live is None:
            return
        from dms_kernel.model.elements import ConductingEquipment, ConnectivityNode, TopologicalNode

        points: dict[str, list[str]] = {}
        for binding in live.bindings:
            points.setdefault(binding.point, []).append(binding.equipment.mrid)
        self._by_point = {point: tuple(dict.fromkeys(mrids)) for point, mrids in points.items()}
        for cls in (ConnectivityNode, TopologicalNode, ConductingEquipment):
            for obj in model.of_type(cls):
                self._known.add(obj.mrid)
                if obj.name:
                    self._by_name.setdefault(obj.name, obj.mrid)
                    self._by_name.setdefault(obj.name.lower(), obj.mrid)

    @property
    def enabled(self) -> bool:
        return self.topology is not None and bool(self._known)

    def elements(self, alarm: ManagedAlarm) -> tuple[str, ...]:
        """The mRIDs an alarm concerns (empty: not suppressible by state)."""
        if not self.enabled:
            return ()
        if alarm.point is not None:
            return self._by_point.get(alarm.point, ())
        found: list[str] = []
        for match in _QUOTED.finditer(alarm.message):
            name = match.group(1) or match.group(2)
            mrid = name if name in self._known else self._by_name.get(name) or self._by_name.get(name.lower())
            if mrid is not None:
                found.append(mrid)
        if found:
            return tuple(dict.fromkeys(found))
        if alarm.source in getattr(self.kernel, "sources", {}):
            points = self.kernel.points
            mask = points.owned_by(alarm.source)
            mrids: list[str] = []
            for name in points.names_of(mask.nonzero()[0]):
                mrids.extend(self._by_point.get(str(name), ()))
            return tuple(dict.fromkeys(mrids))
        return ()

    def reason(self, alarm: ManagedAlarm) -> str | None:
        """Why the alarm is suppressed by plant state, or ``None`` if it is not."""
        if not alarm.elements or self.topology is None:
            return None
        try:
            if any(self.topology.energised(mrid) for mrid in alarm.elements):
                return None
        except Exception:  # noqa: BLE001 - an element the processor does not know: do not suppress
            return None
        names = ", ".join(alarm.elements[:3]) + (" …" if len(alarm.elements) > 3 else "")
        return f"de-energised ({names})"
