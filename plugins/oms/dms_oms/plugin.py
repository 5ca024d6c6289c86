"""Entry point of the ``oms`` plugin: one :class:`~dms_oms.service.OutageManager` per kernel.

At ``dms_startup`` the plugin maps the meters onto the kernel's network model (``[settings.oms]
meters``, else the model's ``PowerFail`` measurements on energy consumers), traces every consumer
upstream with the kernel's topology processor, starts the window loop and, with ``mqtt_host``
set, the AMI head-end ingest; it subscribes to the bus for ``outage`` alarms of meter sources
(the ``dlms`` source raises them) and for power-failure points. Other plugins and the HMI get
the manager with :func:`manager_for`.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

import numpy as np

from dms_hookspecs import Alarm, AlarmState, MeasurementBatch, Setting, SettingsSchema, Validity, hookimpl

from .engine import EngineParams, EventKind
from .inference import InferenceParams
from .mqtt import MqttIngest
from .network import DEFAULT_DEVICE_TYPES, MeterNetwork, meters_from_model
from .service import OutageManager, SnapshotPoller

__all__ = ["manager_for", "settings_schema"]

log = logging.getLogger("leitstand.oms")

PLUGIN = "oms"

_managers: weakref.WeakKeyDictionary[Any, OutageManager] = weakref.WeakKeyDictionary()
_ingests: weakref.WeakKeyDictionary[Any, MqttIngest] = weakref.WeakKeyDictionary()


def manager_for(kernel: Any) -> OutageManager:
    """The running outage manager of ``kernel``. :raises LookupError: not running there."""
    try:
        return _managers[kernel]
    except KeyError:
        raise LookupError("the oms plugin is not running in this kernel (not loaded, blocked, no model, or kernel not started)") from None


def settings_schema() -> SettingsSchema:
    return SettingsSchema(
        (
            Setting("meters", dict, {}, 'meter id → energy consumer mRID: { "M-1042" = "load_7" }; empty: the model\'s PowerFail measurements'),
            Setting("poll_points", dict, {}, "meter id → point whose fresh valid value means the meter answers (polling)"),
            Setting("power_fail_points", dict, {}, "point → meter id: value 1 = last gasp, 0 = power restored"),
            Setting("device_types", list, list(DEFAULT_DEVICE_TYPES), "CIM classes that can be the outage device"),
            Setting("window_s", float, 30.0, "collect notifications this long after the first one"),
            Setting("p_report", float, 0.8, "probability that a meter without supply delivers its last gasp within the window"),
            Setting("false_report_rate", float, 0.001, "probability that a supplied meter sends a last gasp anyway"),
            Setting("poll_failure_rate", float, 0.05, "probability that a supplied meter does not answer a poll"),
            Setting("tie_margin", float, 0.5, "devices scoring within this of the best count as tied: the most downstream wins"),
            Setting("min_reports", int, 2, "last gasps a new outage needs without a confirming poll"),
            Setting("confirm_score", float, 5.0, "score (log-likelihood ratio) a new outage needs without a confirming poll"),
            Setting("poll_meters", int, 3, "meters polled per hypothesis, inside and outside its extent"),
            Setting("poll_max_age_s", float, 15.0, "a polled point must have been received this recently"),
            Setting("repoll_s", float, 60.0, "poll meters of partly restored outages this often"),
            Setting("evidence_ttl_s", float, 900.0, "how long an unexplained last gasp stays evidence"),
            Setting("customers_per_load", int, 1, "customers of a consumer without customerCount"),
            Setting("mqtt_host", str, "", "AMI head-end MQTT broker; empty: no MQTT ingest"),
            Setting("mqtt_port", int, 1883, "MQTT broker port"),
            Setting("mqtt_topic", str, "leitstand/ami/events", "topic (filter) of the head-end's meter events"),
            Setting("mqtt_username", str, "", "MQTT user name (empty: anonymous)"),
            Setting("mqtt_password", str, "", "MQTT password (never logged)"),
        )
    )


@hookimpl
def dms_settings_schema() -> SettingsSchema:
    return settings_schema()


def _params(raw: dict) -> EngineParams:
    inference = InferenceParams(
        p_report=raw["p_report"], false_report_rate=raw["false_report_rate"], poll_failure_rate=raw["poll_failure_rate"], tie_margin=raw["tie_margin"]
    )
    if raw["window_s"] <= 0:
        raise ValueError(f"[settings.oms] window_s must be positive, got {raw['window_s']}")
    return EngineParams(
        window_s=raw["window_s"], min_reports=raw["min_reports"], confirm_score=raw["confirm_score"], poll_meters=raw["poll_meters"],
        evidence_ttl_s=raw["evidence_ttl_s"], inference=inference,
    )


@hookimpl
async def dms_startup(kernel: Any) -> None:
    raw = dict(kernel.settings_for(PLUGIN))
    params = _params(raw)
    model = getattr(kernel, "model", None)
    if model is None or not hasattr(model, "of_type"):
        log.info("oms: deployment %r has no network model: outage management is off", kernel.name)
        return
    meters = {str(k): str(v) for k, v in raw["meters"].items()} or meters_from_model(model)
    if not meters:
        log.info("oms: no meters ([settings.oms] meters empty, no PowerFail measurements in model %r): outage management is off", model.name)
        return
    network = MeterNetwork.from_model(
        model, meters, topology=getattr(kernel, "topology", None), device_types=raw["device_types"], customers_per_load=raw["customers_per_load"]
    )
    power_fail = {str(k): str(v) for k, v in raw["power_fail_points"].items()}
    if not raw["meters"]:  # meters from the model: the meter id is its power-failure point
        power_fail = {**{m: m for m in meters}, **power_fail}
    poll_points = {str(k): str(v) for k, v in raw["poll_points"].items()} or {m: p for p, m in power_fail.items()}
    known = set(kernel.snapshot().names)
    poll_points = {m: p for m, p in poll_points.items() if p in known}
    poller = SnapshotPoller(kernel, poll_points, raw["poll_max_age_s"]) if poll_points else None

    from dms_workorders import service_for

    manager = OutageManager(network, params, emit=kernel.emit, workorders=lambda: service_for(kernel), poller=poller, repoll_s=raw["repoll_s"])
    manager.start()
    _managers[kernel] = manager

    async def deliver(events) -> None:
        for event in events:
            if isinstance(event, Alarm):
                if event.category == "outage" and event.source in network.meter_consumer:
                    if event.state is AlarmState.RAISED:
                        manager.notify(event.source, EventKind.LAST_GASP, event.time)
                    elif event.state is AlarmState.CLEARED:
                        manager.notify(event.source, EventKind.POWER_RESTORE, event.time)
            elif isinstance(event, MeasurementBatch) and power_fail and event.names is not None:
                for name, value, quality, stamp in zip(event.names, event.values, event.quality, event.source_time, strict=False):
                    meter = power_fail.get(name)
                    if meter is not None and (int(quality) & 0b11) == Validity.GOOD:
                        kind = EventKind.LAST_GASP if float(value) >= 0.5 else EventKind.POWER_RESTORE
                        manager.notify(meter, kind, float(stamp) if np.isfinite(stamp) and stamp > 0 else None)

    bus = getattr(kernel, "bus", None)
    if bus is not None:
        accepts = (Alarm, MeasurementBatch) if power_fail else (Alarm,)
        bus.subscribe(f"plugin:{PLUGIN}", deliver, accepts, kernel.deployment.kernel["default_queue_size"])
    if raw["mqtt_host"]:
        ingest = MqttIngest(
            manager.notify, host=raw["mqtt_host"], port=raw["mqtt_port"], topic=raw["mqtt_topic"],
            username=raw["mqtt_username"], password=raw["mqtt_password"], client_id="leitstand-oms-" + "".join(c if c.isalnum() else "-" for c in kernel.name)[:40],
        )
        ingest.start()
        _ingests[kernel] = ingest
    log.info(
        "oms: %d meters on %d consumers, %d candidate devices; window %.0f s; polling %d meters; MQTT %s",
        len(network.meter_consumer), len(network.consumer_meters), len(network.device_consumers), params.window_s, len(poll_points),
        f"{raw['mqtt_host']}:{raw['mqtt_port']}/{raw['mqtt_topic']}" if raw["mqtt_host"] else "off",
    )


@hookimpl
async def dms_shutdown(kernel: Any) -> None:
    ingest = _ingests.pop(kernel, None)
    if ingest is not None:
        await ingest.stop()
    manager = _managers.pop(kernel, None)
    if manager is not None:
        await manager.stop()
