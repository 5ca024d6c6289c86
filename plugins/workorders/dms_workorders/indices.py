"""IEEE 1366 reliability indices (SAIFI, SAIDI, CAIDI, MAIFI) from outage records."""

from __future__ import annotations

import math
from collections.abc import Iterable

from .records import Indices, Outage

__all__ = ["MOMENTARY_LIMIT_S", "reliability_indices"]

MOMENTARY_LIMIT_S = 300.0
"""IEEE 1366: an interruption of at most 5 minutes is momentary; longer ones are sustained."""


def reliability_indices(
    outages: Iterable[Outage],
    start: float,
    end: float,
    customers_served: int,
    *,
    momentary_limit_s: float = MOMENTARY_LIMIT_S,
    now: float | None = None,
) -> Indices:
    """Indices over the reporting period ``[start, end)``.

    An interruption belongs to the period in which it began (IEEE 1366), with its whole
    duration. An outage not yet restored lasts until ``min(end, now)`` for this calculation
    and is reported in ``ongoing``; while that provisional duration is still within the
    momentary limit it is not counted at all (it may still become sustained).

    :param customers_served: N_T, the total number of customers served (> 0).
    :param momentary_limit_s: interruptions this long or shorter are momentary (default 300 s).
    :param now: the current time (default: ``end``), bounding ongoing outages.
    :raises ValueError: ``end`` not after ``start``, or no customers served.
    """
    if not end > start:
        raise ValueError(f"reporting period must end after it starts (start {start}, end {end})")
    if customers_served <= 0:
        raise ValueError(f"customers served must be positive to compute indices, got {customers_served}")
    horizon = end if now is None else min(end, now)
    interruptions = customers = momentary = ongoing = 0
    customer_minutes = 0.0
    for outage in outages:
        if not start <= outage.started < end:
            continue
        restored = outage.restored
        if restored is None:
            duration = horizon - outage.started
            if duration <= momentary_limit_s:
                continue
            ongoing += 1
        else:
            duration = restored - outage.started
            if duration <= momentary_limit_s:
                momentary += outage.customers
                continue
        interruptions += 1
        customers += outage.customers
        customer_minutes += outage.customers * duration / 60.0
    saifi = customers / customers_served
    saidi = customer_minutes / customers_served
    return Indices(
        start=start,
        end=end,
        customers_served=customers_served,
        saifi=saifi,
        saidi_min=saidi,
        caidi_min=saidi / saifi if customers else math.nan,
        maifi=momentary / customers_served,
        interruptions=interruptions,
        customers_interrupted=customers,
        customer_minutes=customer_minutes,
        momentary_customers=momentary,
        ongoing=ongoing,
    )
