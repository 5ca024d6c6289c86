"""End to end over the real MQTT broker: a head-end publishes last gasps → the kernel's oms plugin
infers the outage device → an outage incident with customers in workorders; power restores in
two steps → the outage record splits, closes, and SAIDI/SAIFI count it."""

from __future__ import annotations

import json
import random
import time

import aiomqtt

import dms_oms.plugin
import dms_workorders.plugin
from dms_kernel.model import elements as el
from dms_oms import manager_for
from dms_oms.synthetic import add_devices, add_meters
from dms_pandapower.examples import load_example
from dms_workorders import service_for


def model_and_meters():
    model = load_example("cigre_mv")
    add_devices(model)
    meters = add_meters(model, random.Random(3), meters=(3, 6))
    return model, meters


def deployment(url: str, host: str, port: int, topic: str, meters: dict[str, str]) -> str:
    table = ", ".join(f'"{m}" = "{c}"' for m, c in meters.items())
    return f"""
        [deployment]
        name = "oms e2e"

        [settings.workorders]
        url = "{url}"
        outages_from_topology = false

        [settings.oms]
        window_s = 1.0
        mqtt_host = "{host}"
        mqtt_port = {port}
        mqtt_topic = "{topic}"
        meters = {{ {table} }}
    """


async def test_last_gasps_over_mqtt_open_an_outage_incident_and_restores_close_it(make_kernel, tmp_path, mqtt_broker, wait_until):
    host, port = mqtt_broker
    topic = f"leitstand-test/{time.time_ns()}/ami"
    model, meters = model_and_meters()
    url = f"sqlite:///{tmp_path / 'wo.db'}"
    kernel = make_kernel(("workorders", dms_workorders.plugin), ("oms", dms_oms.plugin), deployment=deployment(url, host, port, topic, meters))
    kernel.model = model
    rng = random.Random(11)
    now = time.time()
    started = now - 3600.0  # the burst happened an hour ago (meter clocks): a sustained interruption
    async with kernel:
        oms, workorders = manager_for(kernel), service_for(kernel)
        network = oms.network
        device = "line_6_recloser"  # Line 8-9: consumers at buses 9, 10, 11
        assert isinstance(model.get(device), el.Recloser)
        extent = set(network.extent(device))
        assert len(extent) >= 3
        out_meters = sorted(network.device_meters[device])
        sent = [m for m in out_meters if rng.random() >= 0.2]  # 20 % lost
        false_report = next(m for m in sorted(meters) if m not in out_meters)
        await wait_until(lambda: kernel in dms_oms.plugin._ingests and dms_oms.plugin._ingests[kernel].connected.is_set(), what="MQTT subscription")
        async with aiomqtt.Client(host, port) as client:
            batch = [{"meter": m, "event": "last_gasp", "time": started + rng.uniform(0, 1)} for m in sent]
            await client.publish(topic, json.dumps(batch[: len(batch) // 2]), qos=1)
            for item in batch[len(batch) // 2:]:
                await client.publish(topic, json.dumps(item), qos=1)
            await client.publish(topic, json.dumps({"meter": false_report, "event": "power_fail", "time": started + 2}), qos=1)
            await client.publish(topic, b"not json", qos=1)

            await wait_until(lambda: len(oms.outages(ongoing=True)) >= 1, what="an outage inferred")
            [outage] = oms.outages(ongoing=True)
            assert outage.device == device
            customers = network.customers_of(extent)
            [incident] = workorders.incidents()
            assert incident.source == "outage" and incident.element == device
            assert f"{customers} customers" in incident.title
            [record] = workorders.outages(ongoing=True)
            assert record.customers == customers and set(record.elements) == extent
            assert abs(record.started - started) < 1.0
            print(f"\noutage at {network.describe(device)}: {customers} customers, {len(extent)} consumers, "
                  f"{len(sent)} of {len(out_meters)} last gasps + 1 false report; incident {incident.id}: {incident.title!r}")

            # restoration in two steps: first the consumers nearest the recloser (one restore per consumer suffices)
            ordered = sorted(extent)
            first, rest = ordered[: len(ordered) // 2], ordered[len(ordered) // 2:]
            first_nodes = {network.consumer_node[c] for c in first}
            first = sorted(c for c in extent if network.consumer_node[c] in first_nodes)  # consumers on one node come back together
            rest = sorted(extent - set(first))
            t1, t2 = started + 1800.0, started + 3000.0
            restores = [{"meter": network.consumer_meters[c][0], "event": "power_restore", "time": t1} for c in first]
            await client.publish(topic, json.dumps(restores), qos=1)
            await wait_until(lambda: len(outage.restored) == len(first), what="partial restoration")
            await wait_until(lambda: len(workorders.outages(ongoing=False)) == 1, what="the restored part split off")
            assert outage.ongoing
            restores = [{"meter": network.consumer_meters[c][-1], "event": "power_restore", "time": t2} for c in rest]
            await client.publish(topic, json.dumps(restores), qos=1)
            await wait_until(lambda: not outage.ongoing, what="restoration of the rest")
            await wait_until(lambda: not workorders.outages(ongoing=True), what="outage records closed")

        records = workorders.outages()
        assert sum(r.customers for r in records) == customers
        minutes = {r.restored: r.customers for r in records}
        assert set(minutes) == {t1, t2}
        served = workorders.total_customers()
        indices = workorders.indices(started - 60, now + 60)
        start = outage.started  # the earliest last gasp
        assert all(r.started == start for r in records)
        expected_saidi = (minutes[t1] * (t1 - start) + minutes[t2] * (t2 - start)) / 60.0 / served
        assert abs(indices.saidi_min - expected_saidi) < 1e-6
        assert abs(indices.saifi - customers / served) < 1e-9
        await wait_until(lambda: workorders.incident(incident.id).status == "closed", what="the incident closed")
        notes = [n.text for n in workorders.notes(incident=incident)]
        assert any("still out" in n for n in notes) and any("outage over" in n for n in notes)
        assert dms_oms.plugin._ingests[kernel].malformed == 1
        print(f"restored {minutes[t1]} customers after 30 min and {minutes[t2]} after 50 min: SAIFI {indices.saifi:.4f}, "
              f"SAIDI {indices.saidi_min:.3f} min, CAIDI {indices.caidi_min:.1f} min over {served} customers served")
