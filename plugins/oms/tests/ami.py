"""Randomised AMI outage trials: a random device opens, its meters send last gasps — some lost,
some late, some false ones elsewhere — and the engine must name the device."""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs

from dms_oms.engine import EngineParams, EventKind, OutageEngine
from dms_oms.network import MeterNetwork

T0 = 1_700_000_000.0


@attrs.frozen
class Scenario:
    drop: float = 0.2  #: share of last gasps lost
    late: float = 0.1  #: share of the others delivered after the window closed
    false_trials: float = 0.3  #: share of trials with 1-2 false last gasps elsewhere
    poll_failure: float = 0.05  #: polls of supplied meters that go unanswered


@attrs.frozen
class TrialResult:
    truth: str
    predicted: str | None
    correct: bool  #: predicted device has the true device's extent (AMI cannot tell apart devices that feed the same consumers)
    strict: bool  #: predicted device is the true device
    spurious: int  #: further outages predicted without any true outage behind them


def run_trial(network: MeterNetwork, device: str, rng: random.Random, scenario: Scenario, *, polling: bool = True,
              params: EngineParams | None = None) -> TrialResult:
    params = params or EngineParams()
    engine = OutageEngine(network, params, seed=rng.randrange(1 << 30))
    out = set(network.device_meters[device])
    events: list[tuple[float, str, float]] = []  # (received, meter, time)
    for meter in sorted(out):
        if rng.random() < scenario.drop:
            continue
        when = T0 + rng.uniform(0.0, 0.5)
        if rng.random() < scenario.late:
            received = T0 + params.window_s + rng.uniform(5.0, 120.0)
        else:
            received = T0 + rng.uniform(0.2, 10.0)
        events.append((received, meter, when))
    if rng.random() < scenario.false_trials:
        others = sorted(set(network.meter_consumer) - out)
        for meter in rng.sample(others, rng.randint(1, 2)):
            received = T0 + rng.uniform(0.0, 20.0)
            events.append((received, meter, received - 0.1))
    events.sort()

    def poll(meters) -> dict[str, bool]:
        if not polling:
            return {}
        return {m: (m not in out) and rng.random() >= scenario.poll_failure for m in meters}

    def close(now: float) -> None:
        plan = engine.plan(now)
        engine.commit(now, poll(plan.polls))

    for received, meter, when in events:
        if engine.due(received):
            close(engine.window_end)
        engine.notify(meter, EventKind.LAST_GASP, when, received)
    while engine.window_end is not None:
        close(engine.window_end)
    truth_extent = set(network.extent(device))
    best = None
    spurious = 0
    for outage in engine.outages.values():
        if "merged_into" in outage.records:
            continue
        extent = set(network.extent(outage.device))
        if extent & truth_extent:
            if best is None or len(extent & truth_extent) > len(set(network.extent(best.device)) & truth_extent):
                best = outage
        else:
            spurious += 1
    predicted = best.device if best is not None else None
    correct = predicted is not None and set(network.extent(predicted)) == truth_extent
    return TrialResult(device, predicted, correct, predicted == device, spurious)


def run_trials(network: MeterNetwork, trials: int, seed: int, scenario: Scenario = Scenario(), *, polling: bool = True,
               devices: Callable[[MeterNetwork], list[str]] | None = None) -> list[TrialResult]:
    rng = random.Random(seed)
    choices = devices(network) if devices else sorted(network.device_consumers)
    return [run_trial(network, rng.choice(choices), rng, scenario, polling=polling) for _ in range(trials)]
