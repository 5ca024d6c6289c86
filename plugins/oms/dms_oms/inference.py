"""Outage device inference: which device opened, given the meters that reported, were polled or stayed silent.

For a candidate device *d* with downstream meters *M(d)*, the log-likelihood ratio of
"*d* opened" against "nothing happened" is a sum over those meters (each observed independently):

    S(d) = Σ_{m ∈ M(d)} w(m),  w(m) = log P(obs_m | out) − log P(obs_m | supplied)

with, for a meter's observations in the window:

* last gasp received: P = ``p_report`` if out, ``false_report_rate`` if supplied; no last gasp:
  ``1 − p_report`` and ``1 − false_report_rate`` — so lost and late messages only weaken the
  evidence (each silent meter costs log((1−p)/(1−f)) ≈ −1.6 at p = 0.8);
* poll not answered: ``1 − poll_answer_when_out`` if out, ``poll_failure_rate`` if supplied;
  poll answered: ``poll_answer_when_out`` / ``1 − poll_failure_rate`` (an answering meter has
  supply: a strong negative weight).

Meters outside *M(d)* contribute the same under both hypotheses, so they cancel. The device with
the largest *S* wins; among devices within ``tie_margin`` of the best, the one with the fewest
downstream meters (the most downstream one) is chosen. Several simultaneous outages are found
greedily: the meters a chosen device explains are removed and the search repeats while a
device still scores at least ``min_score`` (default 0: more likely out than not; the engine
asks more before it opens an outage).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import attrs

from .network import MeterNetwork

__all__ = ["InferenceParams", "Hypothesis", "infer", "meter_weights"]


@attrs.frozen
class InferenceParams:
    """Parameters of the likelihood model (see the module docs)."""

    p_report: float = 0.8
    false_report_rate: float = 0.001
    poll_failure_rate: float = 0.05
    poll_answer_when_out: float = 1e-4
    tie_margin: float = 0.5
    min_score: float = 0.0
    max_outages: int = 10

    def __attrs_post_init__(self) -> None:
        for name in ("p_report", "false_report_rate", "poll_failure_rate", "poll_answer_when_out"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must lie strictly between 0 and 1, got {value}")
        if self.false_report_rate >= self.p_report:
            raise ValueError(f"false_report_rate ({self.false_report_rate}) must be below p_report ({self.p_report})")

    @property
    def reported(self) -> float:
        return math.log(self.p_report / self.false_report_rate)

    @property
    def silent(self) -> float:
        return math.log((1.0 - self.p_report) / (1.0 - self.false_report_rate))

    @property
    def poll_dead(self) -> float:
        return math.log((1.0 - self.poll_answer_when_out) / self.poll_failure_rate)

    @property
    def poll_alive(self) -> float:
        return math.log(self.poll_answer_when_out / (1.0 - self.poll_failure_rate))


@attrs.frozen
class Hypothesis:
    """One inferred outage.

    :param device: the device mRID believed open.
    :param score: its log-likelihood ratio S(d) (over the meters not explained before it).
    :param meters: downstream meters, :param reported: those that sent a last gasp,
        :param polled_dead: / :param polled_alive: polled without / with an answer.
    :param runner_up: the next best device and its score (how sure the choice is).
    """

    device: str
    score: float
    meters: tuple[str, ...]
    reported: tuple[str, ...]
    polled_dead: tuple[str, ...] = ()
    polled_alive: tuple[str, ...] = ()
    runner_up: tuple[str, float] | None = None


def meter_weights(
    params: InferenceParams, reported: Iterable[str], polled: Mapping[str, bool] | None = None
) -> dict[str, float]:
    """Weight of every meter with an observation beyond silence, *relative to silence*.

    A silent, unpolled meter weighs ``params.silent``; the returned value is what to add on top.
    ``polled`` maps meter → answered (True) / not answered (False).
    """
    extra: dict[str, float] = {}
    for meter in reported:
        extra[meter] = params.reported - params.silent
    for meter, answered in (polled or {}).items():
        extra[meter] = extra.get(meter, 0.0) + (params.poll_alive if answered else params.poll_dead)
    return extra


def infer(
    network: MeterNetwork,
    reported: Iterable[str],
    polled: Mapping[str, bool] | None = None,
    params: InferenceParams | None = None,
    *,
    explained: Iterable[str] = (),
) -> list[Hypothesis]:
    """The most likely outage devices for the meters that sent last gasps (and poll results).

    :param reported: meters with a last gasp in the window (unknown meters are ignored).
    :param polled: meter → answered a poll.
    :param explained: meters already known to be out (not evidence for another device).
    :returns: hypotheses, best first; empty when no device reaches ``min_score``.
    """
    params = params or InferenceParams()
    polled = dict(polled or {})
    reported = [m for m in dict.fromkeys(reported) if m in network.meter_consumer]
    extra = meter_weights(params, reported, polled)
    done = set(explained)
    dead = {m for m, answered in polled.items() if not answered}
    alive = {m for m, answered in polled.items() if answered}
    hypotheses: list[Hypothesis] = []
    while len(hypotheses) < params.max_outages:
        evidence = [m for m in reported if m not in done] + [m for m in dead if m not in done and m in network.meter_consumer]
        candidates = dict.fromkeys(d for m in evidence for d in network.upstream(m))
        if not candidates:
            break
        scored: list[tuple[float, int, str]] = []
        for device in candidates:
            meters = [m for m in network.device_meters.get(device, ()) if m not in done]
            if not meters:
                continue
            score = params.silent * len(meters) + sum(extra.get(m, 0.0) for m in meters)
            scored.append((score, len(meters), device))
        if not scored:
            break
        scored.sort(key=lambda s: (-s[0], s[1]))
        best_score = scored[0][0]
        if best_score < params.min_score:
            break
        near = [s for s in scored if s[0] >= best_score - params.tie_margin]
        score, _, device = min(near, key=lambda s: (s[1], -s[0]))
        others = [s for s in scored if s[2] != device]
        meters = tuple(m for m in network.device_meters[device] if m not in done)
        chosen = set(meters)
        hypotheses.append(
            Hypothesis(
                device=device,
                score=score,
                meters=meters,
                reported=tuple(m for m in reported if m in chosen),
                polled_dead=tuple(sorted(dead & chosen)),
                polled_alive=tuple(sorted(alive & chosen)),
                runner_up=(others[0][2], others[0][0]) if others else None,
            )
        )
        done |= chosen
    return hypotheses
