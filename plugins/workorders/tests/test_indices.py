"""IEEE 1366 SAIFI, SAIDI, CAIDI on a worked example computed by hand, and outage records."""

from __future__ import annotations

import math

import pytest

from dms_hookspecs import TopologyChanged
from dms_workorders import Outage, Workorders, reliability_indices

from .grid import SITE_LAT, SITE_LON, feeder

H = 3600.0
MIN = 60.0
MAY = 1714521600.0  # 2024-05-01 00:00 UTC
JUNE = MAY + 31 * 24 * H  # 2024-06-01 00:00 UTC


def outage(number, started, minutes, customers):
    return Outage(id=number, incident_id=None, started=started, customers=customers, restored=started + minutes * MIN)


WORKED_EXAMPLE = [
    outage(1, MAY + 2 * 24 * H, 90, 200),  # sustained
    outage(2, MAY + 3 * 24 * H, 3, 50),  # momentary (3 min)
    outage(3, MAY + 4 * 24 * H, 5, 120),  # momentary: exactly 5 min is not sustained
    outage(4, MAY + 10 * 24 * H, 45, 300),  # sustained
    outage(5, MAY + 20 * 24 * H, 120, 80),  # sustained
    outage(6, MAY + 25 * 24 * H, 6, 40),  # sustained: just over 5 min
    outage(7, MAY - 30 * MIN, 60, 500),  # began in April: another period, even though it ends in May
    outage(8, JUNE + H, 20, 10),  # June: outside
]


def test_worked_example_by_hand():
    # Period: May 2024; N_T = 1000 customers served.
    # Sustained interruptions (> 5 min) that began in May:
    #   #1  200 customers x  90 min = 18000 customer-minutes
    #   #4  300 customers x  45 min = 13500
    #   #5   80 customers x 120 min =  9600
    #   #6   40 customers x   6 min =   240
    #   sum N_i = 200 + 300 + 80 + 40 = 620 customers interrupted
    #   sum r_i N_i = 18000 + 13500 + 9600 + 240 = 41340 customer-minutes
    # SAIFI = 620 / 1000 = 0.62 interruptions per customer
    # SAIDI = 41340 / 1000 = 41.34 minutes per customer
    # CAIDI = SAIDI / SAIFI = 41340 / 620 = 66.677419... minutes
    # Momentary (<= 5 min): #2 50 + #3 120 = 170 customers -> MAIFI = 170 / 1000 = 0.17
    result = reliability_indices(WORKED_EXAMPLE, MAY, JUNE, 1000)
    assert result.interruptions == 4
    assert result.customers_interrupted == 620
    assert result.customer_minutes == pytest.approx(41340.0)
    assert result.saifi == pytest.approx(0.62)
    assert result.saidi_min == pytest.approx(41.34)
    assert result.caidi_min == pytest.approx(41340 / 620)
    assert result.caidi_min == pytest.approx(66.6774, abs=1e-4)
    assert result.momentary_customers == 170
    assert result.maifi == pytest.approx(0.17)
    assert result.ongoing == 0


def test_same_example_through_the_service(service):
    for o in WORKED_EXAMPLE:
        service.record_outage(started=o.started, restored=o.restored, customers=o.customers, cause=f"example #{o.id}")
    result = service.indices(MAY, JUNE, customers_served=1000)
    assert (result.saifi, result.saidi_min, result.caidi_min) == pytest.approx((0.62, 41.34, 41340 / 620))
    assert [o.customers for o in service.outages(start=MAY, end=JUNE)] == [200, 50, 120, 300, 80, 40]
    # every outage opened an incident of source "outage"
    assert {i.source for i in service.incidents()} == {"outage"} and len(service.incidents()) == 8


def test_no_interruptions_and_invalid_input():
    quiet = reliability_indices([], MAY, JUNE, 1000)
    assert (quiet.saifi, quiet.saidi_min, quiet.interruptions) == (0.0, 0.0, 0)
    assert math.isnan(quiet.caidi_min)
    with pytest.raises(ValueError, match="customers served must be positive"):
        reliability_indices([], MAY, JUNE, 0)
    with pytest.raises(ValueError, match="must end after it starts"):
        reliability_indices([], JUNE, MAY, 1000)


def test_ongoing_outage_counts_until_now_or_period_end(service, clock):
    clock.now = MAY + 10 * 24 * H
    first = service.record_outage(started=clock.now - 30 * MIN, customers=100)
    service.record_outage(started=clock.now - 2 * MIN, customers=999)  # ongoing for 2 min: not (yet) counted
    result = service.indices(MAY, JUNE, customers_served=1000)
    # 100 customers x 30 min so far = 3000 customer-minutes -> SAIDI 3.0, SAIFI 0.1
    assert (result.ongoing, result.saifi, result.saidi_min) == (1, pytest.approx(0.1), pytest.approx(3.0))
    restored = service.restore_outage(first, time=clock.now + 30 * MIN, user="anna")
    assert restored.duration_s == 60 * MIN
    with pytest.raises(Exception, match=f"outage {first.id} was already restored"):
        service.restore_outage(first)


def test_customers_from_the_model(tmp_path, clock):
    service = Workorders.open(f"sqlite:///{tmp_path / 'wo.db'}", clock=clock, model=feeder(), customers_per_load=3)
    try:
        # L1 has customerCount 40, L2 none (-> customers_per_load 3), L3 25
        assert service.customers_of(["L1", "L2"]) == 43
        assert service.total_customers() == 68
        recorded = service.record_outage(started=MAY, elements=["L1", "L2"], cause="fuse")
        assert recorded.customers == 43 and recorded.elements == ("L1", "L2")
        assert service.incident(recorded.incident_id).title == "outage: 43 customers interrupted (fuse)"
    finally:
        service.close()


def test_outages_follow_topology_changes_with_step_restoration(tmp_path, clock):
    service = Workorders.open(f"sqlite:///{tmp_path / 'wo.db'}", clock=clock, model=feeder())
    try:
        t = MAY + 5 * 24 * H
        # Q1 trips: n1 (L1 40 + L2 1 customers) and n2 (L3 25) lose supply
        [lost] = service.outages_from_topology(TopologyChanged(deenergised=("n1", "n2"), switches=("q1",), time=t))
        assert (lost.customers, set(lost.elements), lost.restored) == (66, {"L1", "L2", "L3"}, None)
        incident = service.incident(lost.incident_id)
        assert (incident.source, incident.element, incident.lat, incident.lon) == ("outage", "q1", SITE_LAT, SITE_LON)  # at the breaker
        assert lost.cause == "de-energised (switching q1)"
        # the same nodes reported again start no second outage
        assert service.outages_from_topology(TopologyChanged(deenergised=("n1",), time=t + 60)) == []
        # after 20 min Q1 recloses with Line 1-2 isolated: n1 is back, n2 stays dark for an hour
        [step] = service.outages_from_topology(TopologyChanged(energised=("n1",), time=t + 20 * MIN))
        assert (step.customers, set(step.elements), step.restored, step.incident_id) == (41, {"L1", "L2"}, t + 20 * MIN, lost.incident_id)
        [last] = service.outages_from_topology(TopologyChanged(energised=("n2",), time=t + 60 * MIN))
        assert (last.id, last.customers, last.restored) == (lost.id, 25, t + 60 * MIN)
        # 41 customers x 20 min + 25 customers x 60 min = 820 + 1500 = 2320 customer-minutes;
        # 66 customers interrupted once each
        result = service.indices(MAY, JUNE, customers_served=66)
        assert result.customers_interrupted == 66
        assert result.customer_minutes == pytest.approx(2320.0)
        assert result.saifi == pytest.approx(1.0)
    finally:
        service.close()
