"""Automatic assignment: the nearest qualified crew on shift that is free; shifts; locations from CIM."""

from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

import pytest

from dms_workorders import AUTO, Crew, NoCrewAvailable, OrderState, Workorders
from dms_workorders.geo import EARTH_RADIUS_KM, element_location, haversine_km, on_shift

from .conftest import T0
from .grid import SITE_LAT, SITE_LON, feeder

KM_PER_DEGREE_LAT = EARTH_RADIUS_KM * math.pi / 180  # along a meridian: 111.195 km per degree


def north_of_site(km: float) -> tuple[float, float]:
    return SITE_LAT + km / KM_PER_DEGREE_LAT, SITE_LON


@pytest.fixture
def local(tmp_path, clock):
    service = Workorders.open(f"sqlite:///{tmp_path / 'wo.db'}", clock=clock, model=feeder())
    yield service
    service.close()


def test_haversine_against_known_distances():
    assert haversine_km(52.0, 13.0, 53.0, 13.0) == pytest.approx(KM_PER_DEGREE_LAT, rel=1e-12)
    # Berlin Alexanderplatz -> Munich Marienplatz: 504 km great-circle
    assert haversine_km(52.5219, 13.4132, 48.1374, 11.5755) == pytest.approx(504.2, abs=0.5)
    assert haversine_km(0.0, 0.0, 0.0, 180.0) == pytest.approx(math.pi * EARTH_RADIUS_KM)


def test_auto_assignment_picks_the_nearest_qualified_crew_on_shift(service, clock):
    # clock: 10:00 UTC; shifts in UTC
    crews = [
        Crew("a-unqualified", {"lv"}, "06:00", "18:00", *north_of_site(0.5)),
        Crew("b-off-shift", {"mv"}, "14:00", "22:00", *north_of_site(1.0)),
        Crew("c-busy", {"mv"}, "06:00", "18:00", *north_of_site(1.5)),
        Crew("d-chosen", {"mv", "cable"}, "06:00", "14:00", *north_of_site(3.0)),
        Crew("e-far", {"mv"}, "00:00", "00:00", *north_of_site(10.0)),
        Crew("f-no-position", {"mv"}, "00:00", "00:00"),
    ]
    for crew in crews:
        service.add_crew(crew)
    other = service.create_incident("cable fault", lat=SITE_LAT, lon=SITE_LON)
    service.assign(service.create_order(other, skills=["mv"]), "c-busy")

    incident = service.create_incident("Breaker Q1 tripped", lat=SITE_LAT, lon=SITE_LON, priority=1)
    order = service.create_order(incident, skills=["mv"])
    crew, distance = service.nearest_crew(order)
    assert crew.name == "d-chosen" and distance == pytest.approx(3.0, abs=1e-9)
    assigned = service.assign(order, AUTO, user="anna")
    assert (assigned.state, assigned.crew) == (OrderState.ASSIGNED, "d-chosen")
    assert service.history(order)[-1].note == "nearest qualified crew on shift: d-chosen, 3.00 km"

    # at 14:00 b-off-shift's shift begins and d-chosen's is over
    clock.now = T0 + 4 * 3600
    second = service.create_order(incident, skills=["mv"])
    assert service.assign(second, AUTO).crew == "b-off-shift"
    third = service.create_order(incident, skills=["mv"])
    assert service.assign(third, AUTO).crew == "e-far"
    fourth = service.create_order(incident, skills=["mv"])
    with pytest.raises(NoCrewAvailable, match=rf"work order {fourth.id} \(needs mv\): no crew available — 6 crews, 5 qualified, 4 of them on shift at 14:00 UTC, 1 free, 0 with a known position"):
        service.assign(fourth, AUTO)
    assert service.order(fourth).state is OrderState.NEW  # a failed assignment changes nothing


def test_ties_are_broken_by_name_and_no_location_is_an_error(service):
    service.add_crew(Crew("zulu", {"mv"}, "00:00", "00:00", *north_of_site(2.0)))
    service.add_crew(Crew("alpha", {"mv"}, "00:00", "00:00", *north_of_site(2.0)))
    located = service.create_order(service.create_incident("x", lat=SITE_LAT, lon=SITE_LON))
    assert service.assign(located, AUTO).crew == "alpha"
    nowhere = service.create_order(service.create_incident("phone call: lights out", element="unknown-element"))
    with pytest.raises(NoCrewAvailable, match="incident .* has no location \\(element 'unknown-element'\\); assign a crew by name"):
        service.assign(nowhere, AUTO)


def test_crew_position_updates_change_the_choice(service):
    service.add_crew(Crew("one", {"mv"}, "00:00", "00:00", *north_of_site(5.0)))
    service.add_crew(Crew("two", {"mv"}, "00:00", "00:00", *north_of_site(6.0)))
    order = service.create_order(service.create_incident("x", lat=SITE_LAT, lon=SITE_LON))
    assert service.nearest_crew(order)[0].name == "one"
    service.move_crew("two", *north_of_site(0.2), user="gps")
    assert service.nearest_crew(order)[0].name == "two"
    assert service.crew("two").lat == pytest.approx(north_of_site(0.2)[0])


def test_shifts_over_midnight_and_in_local_time():
    utc, berlin = ZoneInfo("UTC"), ZoneInfo("Europe/Berlin")

    def at(hour, minute=0, zone=utc):
        return dt.datetime(2024, 5, 15, hour, minute, tzinfo=zone).timestamp()

    assert on_shift("22:00", "06:00", at(23, 30), utc)
    assert on_shift("22:00", "06:00", at(5, 59), utc)
    assert not on_shift("22:00", "06:00", at(6, 0), utc)  # the end is exclusive
    assert not on_shift("22:00", "06:00", at(12), utc)
    assert on_shift("06:00", "14:00", at(6, 0), utc)
    assert on_shift("00:00", "00:00", at(3), utc)  # around the clock
    # 10:00 UTC is 12:00 in Berlin (CEST) in May
    assert on_shift("11:00", "13:00", at(10), berlin) and not on_shift("11:00", "13:00", at(10), utc)
    with pytest.raises(ValueError, match="shift time '25:00' is not HH:MM"):
        on_shift("25:00", "06:00", at(1), utc)


def test_incident_location_comes_from_the_cim_location_of_the_element(local):
    model = feeder()
    assert element_location(model, "q1") == ("q1", SITE_LAT, SITE_LON)  # by mRID
    assert element_location(model, "Q1") == ("q1", SITE_LAT, SITE_LON)  # by name
    assert element_location(model, "Q1.pos") == ("q1", SITE_LAT, SITE_LON)  # by SCADA point, through the Measurement
    assert element_location(model, "Line 1-2") == ("line12", pytest.approx(52.51), pytest.approx(13.41))  # mean of the line's points
    assert element_location(model, "L1") is None  # no Location

    incident = local.create_incident("Breaker Q1 tripped", element="Q1.pos")
    assert (incident.lat, incident.lon) == (SITE_LAT, SITE_LON)
    local.add_crew(Crew("near", {"mv"}, "00:00", "00:00", *north_of_site(1.0)))
    order = local.create_order(incident, skills="mv")
    assert local.nearest_crew(order) == (local.crew("near"), pytest.approx(1.0))
