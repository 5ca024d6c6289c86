"""Meters on the network: meter → energy consumer → the candidate outage devices upstream of it.

A :class:`MeterNetwork` is built once from the network model and the topology processor
(:class:`dms_kernel.model.topology.TopologyProcessor`): every metered energy consumer is traced
upstream to its source, and the protective or switching devices on that path (fuses,
reclosers, breakers, sectionalisers, transformers — see :data:`DEFAULT_DEVICE_TYPES`) are its
candidate outage devices, nearest first. Inverting those paths gives each device its
downstream consumers (the predicted outage extent) and meters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from dms_kernel.model import elements as el

__all__ = ["MeterNetwork", "DEFAULT_DEVICE_TYPES", "meters_from_model"]

DEFAULT_DEVICE_TYPES = ("Fuse", "Recloser", "Breaker", "Sectionaliser", "PowerTransformer")
"""CIM classes that open by themselves (protection) or whose loss interrupts all consumers behind them."""


def _type_names(cls: type) -> set[str]:
    return {c.__name__ for c in cls.__mro__}


def meters_from_model(model: Any, measurement_types: Iterable[str] = ("PowerFail",)) -> dict[str, str]:
    """``meter id → consumer mRID`` from the model's measurements: every ``Measurement`` of type
    ``PowerFail`` (the meter's power-failure point) on an ``EnergyConsumer`` (its power system
    resource, or its terminal's equipment), the point's name as meter id."""
    types = set(measurement_types)
    meters: dict[str, str] = {}
    for measurement in model.of_type(el.Measurement):
        if measurement.measurement_type not in types:
            continue
        resource = model.objects.get(measurement.power_system_resource or "")
        if resource is None and measurement.terminal:
            terminal = model.objects.get(measurement.terminal)
            resource = model.objects.get(getattr(terminal, "conducting_equipment", "") or "")
        if isinstance(resource, el.EnergyConsumer) and measurement.point:
            meters.setdefault(measurement.point, resource.mrid)
    return meters


@attrs.define
class MeterNetwork:
    """Meters, consumers and candidate devices of one network (see the module docs).

    :param meter_consumer: meter id → energy consumer mRID.
    :param customers: consumer mRID → customers (``customer_count``, else ``customers_per_load``).
    :param paths: consumer mRID → candidate device mRIDs upstream, nearest first.
    :param device_names: device mRID → display name (``name`` or mRID) and CIM class.
    """

    meter_consumer: dict[str, str]
    customers: dict[str, int]
    paths: dict[str, tuple[str, ...]]
    device_names: dict[str, tuple[str, str]]
    consumer_meters: dict[str, tuple[str, ...]] = attrs.field(init=False)
    device_consumers: dict[str, tuple[str, ...]] = attrs.field(init=False)
    device_meters: dict[str, tuple[str, ...]] = attrs.field(init=False)
    consumer_node: dict[str, str] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        consumer_meters: dict[str, list[str]] = {}
        for meter, consumer in self.meter_consumer.items():
            consumer_meters.setdefault(consumer, []).append(meter)
        self.consumer_meters = {c: tuple(m) for c, m in consumer_meters.items()}
        device_consumers: dict[str, list[str]] = {}
        for consumer, path in self.paths.items():
            for device in path:
                device_consumers.setdefault(device, []).append(consumer)
        self.device_consumers = {d: tuple(c) for d, c in device_consumers.items()}
        self.device_meters = {
            d: tuple(m for c in consumers for m in self.consumer_meters.get(c, ())) for d, consumers in self.device_consumers.items()
        }

    @classmethod
    def from_model(
        cls,
        model: Any,
        meters: Mapping[str, str] | None = None,
        *,
        topology: Any = None,
        device_types: Iterable[str] = DEFAULT_DEVICE_TYPES,
        customers_per_load: int = 1,
    ) -> MeterNetwork:
        """Trace every consumer upstream through ``topology`` (a new processor if ``None``).

        :param meters: meter id → consumer mRID; default :func:`meters_from_model`.
        :raises ValueError: a meter names no energy consumer of the model.
        """
        from dms_kernel.model.topology import TopologyProcessor

        topology = topology if topology is not None else TopologyProcessor(model)
        meters = dict(meters_from_model(model) if meters is None else meters)
        wanted = set(device_types)
        consumers = model.of_type(el.EnergyConsumer)
        by_mrid = {c.mrid: c for c in consumers}
        for meter, consumer in meters.items():
            if consumer not in by_mrid:
                raise ValueError(f"meter {meter!r}: {consumer!r} is not an energy consumer of model {model.name!r}")
        paths: dict[str, tuple[str, ...]] = {}
        names: dict[str, tuple[str, str]] = {}
        nodes: dict[str, str] = {}
        customers: dict[str, int] = {}
        for consumer in consumers:
            count = consumer.customer_count
            customers[consumer.mrid] = count if count and count > 0 else customers_per_load
            node = next((n for n in model.nodes_of(consumer) if n is not None), None)
            if node is not None:
                nodes[consumer.mrid] = node
            path = []
            for mrid in topology.trace_upstream(consumer).equipment:
                device = model.objects.get(mrid)
                if device is None or not (_type_names(type(device)) & wanted):
                    continue
                path.append(mrid)
                names.setdefault(mrid, (device.name or mrid, type(device).__name__))
            paths[consumer.mrid] = tuple(path)
        return cls(meters, customers, paths, names, consumer_node=nodes)

    def name_of(self, device: str) -> str:
        return self.device_names.get(device, (device, ""))[0]

    def kind_of(self, device: str) -> str:
        return self.device_names.get(device, ("", "device"))[1]

    def describe(self, device: str) -> str:
        """``Fuse 'F3 fuse'`` — for messages."""
        name, kind = self.device_names.get(device, (device, "device"))
        return f"{kind} {name!r}"

    def customers_of(self, consumers: Iterable[str]) -> int:
        return sum(self.customers.get(c, 1) for c in consumers)

    def extent(self, device: str) -> tuple[str, ...]:
        """Consumers downstream of ``device`` (the predicted outage extent)."""
        return self.device_consumers.get(device, ())

    def upstream(self, meter: str) -> tuple[str, ...]:
        """Candidate devices upstream of a meter, nearest first (empty for an unknown meter)."""
        consumer = self.meter_consumer.get(meter)
        return self.paths.get(consumer, ()) if consumer is not None else ()
