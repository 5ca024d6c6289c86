"""The network model: all CIM objects of a grid, indexed by mRID and by class."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import TypeVar

import attrs

from ..errors import LeitstandError
from .elements import (
    BaseVoltage,
    ConductingEquipment,
    ConnectivityNode,
    IdentifiedObject,
    PowerTransformer,
    PowerTransformerEnd,
    RatioTapChanger,
    Switch,
    Terminal,
)

__all__ = ["NetworkModel", "ModelError"]

T = TypeVar("T", bound=IdentifiedObject)

# attributes holding mRID references, checked by validate()
_REFERENCE_FIELDS = (
    "conducting_equipment",
    "connectivity_node",
    "topological_node",
    "container",
    "base_voltage",
    "location",
    "per_length_impedance",
    "power_transformer",
    "transformer_tank",
    "terminal",
    "transformer_end",
    "load_response",
    "consumer",
    "shunt_compensator",
    "line",
    "power_electronics_connection",
    "power_system_resource",
    "substation",
    "region",
    "normal_head_terminal",
)


class ModelError(LeitstandError):
    """The network model is inconsistent (duplicate mRID, dangling reference, wrong class)."""


class NetworkModel:
    """A grid model: CIM objects by mRID, with the indexes topology and converters need.

    :param name: model name (file name or example-network name).
    """

    def __init__(self, name: str = "model") -> None:
        self.name = name
        self.objects: dict[str, IdentifiedObject] = {}
        self.unknown_classes: collections.Counter[str] = collections.Counter()
        #: solved state read from a CIM SV profile: TopologicalNode mRID -> (u_kv, angle_deg)
        self.state_voltages: dict[str, tuple[float, float]] = {}
        self._by_class: dict[type, list[IdentifiedObject]] | None = None
        self._node_equipment: dict[str, list[tuple[str, str]]] | None = None

    # -- building ------------------------------------------------------------------------

    def add(self, obj: T) -> T:
        """Add an object. :raises ModelError: its mRID is taken."""
        if obj.mrid in self.objects:
            raise ModelError(f"duplicate mRID {obj.mrid!r}: {self.objects[obj.mrid]!r} and {obj!r}")
        self.objects[obj.mrid] = obj
        self._by_class = None
        self._node_equipment = None
        return obj

    def connect(self, equipment: ConductingEquipment, *nodes: ConnectivityNode | str, phases: str | None = None) -> list[Terminal]:
        """Create one terminal per node for ``equipment`` (a helper for building models in code)."""
        terminals = []
        for number, node in enumerate(nodes, start=1):
            node_id = node if isinstance(node, str) else node.mrid
            terminal = self.add(
                Terminal(
                    f"{equipment.mrid}_T{number}",
                    name=f"{equipment.name or equipment.mrid}_T{number}",
                    conducting_equipment=equipment.mrid,
                    connectivity_node=node_id,
                    sequence_number=number,
                    phases=phases or equipment.phases,
                )
            )
            equipment.terminals.append(terminal.mrid)
            terminals.append(terminal)
        self._node_equipment = None
        return terminals

    def invalidate(self) -> None:
        """Drop cached indexes after objects were changed in place (terminals rewired)."""
        self._by_class = None
        self._node_equipment = None

    # -- lookup --------------------------------------------------------------------------

    def get(self, mrid: str, cls: type[T] = IdentifiedObject) -> T:  # type: ignore[assignment]
        """Object by mRID. :raises ModelError: unknown mRID or not of ``cls``."""
        try:
            obj = self.objects[mrid]
        except KeyError:
            raise ModelError(f"unknown mRID {mrid!r}") from None
        if not isinstance(obj, cls):
            raise ModelError(f"{mrid!r} is a {type(obj).__name__}, not a {cls.__name__}")
        return obj

    def of_type(self, cls: type[T]) -> list[T]:
        """All objects that are instances of ``cls`` (subclasses included), in insertion order."""
        if self._by_class is None:
            self._by_class = collections.defaultdict(list)
            for obj in self.objects.values():
                for klass in type(obj).__mro__:
                    self._by_class[klass].append(obj)
        return list(self._by_class.get(cls, ()))  # type: ignore[arg-type]

    def by_name(self, name: str, cls: type[T] = IdentifiedObject) -> T:  # type: ignore[assignment]
        """The object of ``cls`` with this name (case-insensitive). :raises ModelError: none or several."""
        found = [obj for obj in self.of_type(cls) if obj.name.lower() == name.lower()]
        if len(found) != 1:
            raise ModelError(f"{len(found)} {cls.__name__} objects named {name!r}")
        return found[0]

    def __len__(self) -> int:
        return len(self.objects)

    def __iter__(self) -> Iterator[IdentifiedObject]:
        return iter(self.objects.values())

    def __contains__(self, mrid: object) -> bool:
        return mrid in self.objects

    def counts(self) -> dict[str, int]:
        """Number of objects per class name."""
        return dict(collections.Counter(type(obj).__name__ for obj in self.objects.values()))

    # -- connectivity --------------------------------------------------------------------

    def terminals(self, equipment: ConductingEquipment | str) -> list[Terminal]:
        """Terminals of ``equipment`` ordered by sequence number."""
        if isinstance(equipment, str):
            equipment = self.get(equipment, ConductingEquipment)
        terminals = [self.get(mrid, Terminal) for mrid in equipment.terminals]
        return sorted(terminals, key=lambda t: t.sequence_number)

    def node_of(self, terminal: Terminal) -> str | None:
        """The node a terminal connects to: its ConnectivityNode, else its TopologicalNode."""
        return terminal.connectivity_node or terminal.topological_node

    def nodes_of(self, equipment: ConductingEquipment | str) -> list[str | None]:
        return [self.node_of(t) for t in self.terminals(equipment)]

    def node_ids(self) -> list[str]:
        """All node mRIDs in use: connectivity nodes, or topological nodes in bus-branch models."""
        nodes = dict.fromkeys(n.mrid for n in self.of_type(ConnectivityNode))
        for terminal in self.of_type(Terminal):
            node = self.node_of(terminal)
            if node is not None:
                nodes.setdefault(node)
        return list(nodes)

    def equipment_at(self, node: str) -> list[tuple[str, str]]:
        """``(equipment mRID, terminal mRID)`` pairs connected to ``node``."""
        if self._node_equipment is None:
            index: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
            for terminal in self.of_type(Terminal):
                node_id = self.node_of(terminal)
                if node_id is not None:
                    index[node_id].append((terminal.conducting_equipment, terminal.mrid))
            self._node_equipment = index
        return list(self._node_equipment.get(node, ()))

    # -- transformers --------------------------------------------------------------------

    def ends(self, transformer: PowerTransformer | str) -> list[PowerTransformerEnd]:
        """Windings of a transformer ordered by end number."""
        mrid = transformer if isinstance(transformer, str) else transformer.mrid
        ends = [e for e in self.of_type(PowerTransformerEnd) if e.power_transformer == mrid]
        return sorted(ends, key=lambda e: e.end_number)

    def tap_changer(self, end: PowerTransformerEnd) -> RatioTapChanger | None:
        for changer in self.of_type(RatioTapChanger):
            if changer.transformer_end == end.mrid:
                return changer
        return None

    def nominal_kv(self, obj: IdentifiedObject) -> float | None:
        """Nominal voltage of equipment or a node through its BaseVoltage, if known."""
        reference = getattr(obj, "base_voltage", None)
        if reference and reference in self.objects:
            return self.get(reference, BaseVoltage).nominal_kv
        return None

    def switches(self) -> list[Switch]:
        return self.of_type(Switch)

    # -- checking ------------------------------------------------------------------------

    def dangling_references(self) -> list[tuple[str, str, str]]:
        """``(referring mRID, attribute, missing mRID)`` for every reference to a missing object."""
        missing = []
        for obj in self.objects.values():
            for field in attrs.fields(type(obj)):
                if field.name not in _REFERENCE_FIELDS:
                    continue
                value = getattr(obj, field.name)
                if isinstance(value, str) and value and value not in self.objects:
                    missing.append((obj.mrid, field.name, value))
            for terminal in getattr(obj, "terminals", ()):
                if terminal not in self.objects:
                    missing.append((obj.mrid, "terminals", terminal))
        return missing

    def validate(self) -> None:
        """:raises ModelError: naming the first dangling reference's mRID and the referring object."""
        dangling = self.dangling_references()
        if dangling:
            referrer, attribute, target = dangling[0]
            more = f" (and {len(dangling) - 1} more)" if len(dangling) > 1 else ""
            raise ModelError(
                f"dangling reference: {self.objects[referrer]!r}.{attribute} refers to missing mRID {target!r}{more}"
            )
