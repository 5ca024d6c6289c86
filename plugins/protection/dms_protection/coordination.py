"""Selectivity and coordination check for the present topology.

For every energised node the topology processor traces the path back to the source; the protective
devices on it (switches that have settings), nearest first, form the node's *device chain*. A
device's *zone* are the nodes it is the first device for. Each fault node gives every consecutive
pair (downstream D, upstream U) of its chain two fault currents to check: the maximum (IEC 60909
``max``, 3-phase) and the minimum (``min``, 2-phase) fault current at that node, seen by each
device at its own voltage level (scaled by the nominal voltage ratio across a transformer).

Rules, per pair and current:

* **coordination time interval**: ``t_U - t_D >= cti_s`` (default 0.3 s), with ``t_D`` the
  downstream device's clearing time (relay trip, recloser slow curve, fuse total clearing) and
  ``t_U`` the upstream one's backup time (relay trip, recloser slow curve, fuse minimum melting);
* **fuse–fuse**: ``clearing_D <= fuse_ratio * melting_U`` (default 0.75);
* **fuse–recloser** (recloser upstream of a fuse, fuse saving): the fast curve below the fuse's
  melting curve, the slow curve above its clearing curve.

Per device, **sensitivity**: the smallest fault current in its zone must reach ``pickup × margin``
(default 1.5). The report lists every pair with its worst margin, and every violation with the
devices, the fault node, the currents and the times.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from .settings import DeviceSettings
from .shortcircuit import ShortCircuitCurrents, short_circuit_currents

__all__ = ["CoordinationOptions", "PairResult", "Violation", "CoordinationReport", "check_coordination", "device_chains"]


@attrs.frozen
class CoordinationOptions:
    cti_s: float = 0.3
    sensitivity_margin: float = 1.5
    fuse_ratio: float = 0.75
    recloser_fuse_margin_s: float = 0.0


@attrs.frozen
class Violation:
    """One failed check. ``rule``: ``cti``, ``fuse-fuse``, ``fuse-saving``, ``fuse-clearing``, ``sensitivity``."""

    rule: str
    downstream: str
    upstream: str | None
    node: str
    current_a: float
    upstream_current_a: float | None
    t_downstream_s: float | None
    t_upstream_s: float | None
    margin: float
    required: float
    message: str


@attrs.frozen
class PairResult:
    """The worst case of one upstream/downstream pair."""

    upstream: str
    downstream: str
    margin_s: float
    node: str
    current_a: float
    t_upstream_s: float
    t_downstream_s: float
    ok: bool


@attrs.frozen
class CoordinationReport:
    pairs: tuple[PairResult, ...]
    violations: tuple[Violation, ...]
    devices: tuple[str, ...]
    zones: Mapping[str, tuple[str, ...]]
    currents: ShortCircuitCurrents
    names: Mapping[str, str]

    @property
    def ok(self) -> bool:
        return not self.violations

    def pair(self, upstream: str, downstream: str) -> PairResult:
        for result in self.pairs:
            if (result.upstream, result.downstream) == (upstream, downstream):
                return result
        raise KeyError(f"no device pair {upstream!r} above {downstream!r}")

    def violations_of(self, device: str) -> list[Violation]:
        return [v for v in self.violations if device in (v.upstream, v.downstream)]

    def to_dict(self) -> dict[str, Any]:
        def clean(value: Any) -> Any:
            return None if isinstance(value, float) and not math.isfinite(value) else value

        return {
            "ok": self.ok,
            "devices": list(self.devices),
            "pairs": [{k: clean(v) for k, v in attrs.asdict(p).items()} for p in self.pairs],
            "violations": [{k: clean(v) for k, v in attrs.asdict(v).items()} for v in self.violations],
            "skipped_faults": {f"{c} {f}": why for (c, f), why in self.currents.skipped.items()},
        }


def _name(model, mrid: str) -> str:  # noqa: ANN001
    obj = model.objects.get(mrid)
    return obj.name if obj is not None and obj.name else mrid


def device_chains(model, devices: Mapping[str, DeviceSettings], topology=None) -> dict[str, tuple[str, ...]]:  # noqa: ANN001
    """node mRID -> protective devices on its path to the source, nearest first (energised nodes only)."""
    from dms_kernel.model.topology import TopologyProcessor

    topology = topology or TopologyProcessor(model)
    chains: dict[str, tuple[str, ...]] = {}
    for node in model.node_ids():
        if not topology.energised(node):
            continue
        trace = topology.trace_upstream(node)
        chains[node] = tuple(e for e in trace.equipment if e in devices)
    return chains


def check_coordination(model, settings: Mapping[str, DeviceSettings], options: CoordinationOptions | None = None,  # noqa: ANN001
                       *, currents: ShortCircuitCurrents | None = None, topology=None) -> CoordinationReport:  # noqa: ANN001
    """Check every device pair and every device's sensitivity for the model's present topology."""
    options = options or CoordinationOptions()
    devices = {mrid: s for mrid, s in settings.items() if mrid in model.objects}
    currents = currents or short_circuit_currents(model)
    chains = device_chains(model, devices, topology)
    device_kv: dict[str, float] = {}
    for mrid in devices:
        nodes = [n for n in model.nodes_of(mrid) if n is not None and n in currents.vn_kv]
        if nodes:
            device_kv[mrid] = currents.vn_kv[nodes[0]]
    names = {mrid: _name(model, mrid) for mrid in devices}
    zones: dict[str, list[str]] = {}
    pair_nodes: dict[tuple[str, str], list[str]] = {}
    for node, chain in chains.items():
        if chain:
            zones.setdefault(chain[0], []).append(node)
        for downstream, upstream in zip(chain, chain[1:]):
            pair_nodes.setdefault((upstream, downstream), []).append(node)

    def seen(device: str, node: str, ka: float) -> float:
        """Current in A through ``device`` for a fault current ``ka`` at ``node`` (voltage ratio)."""
        return ka * 1000.0 * currents.vn_kv[node] / device_kv.get(device, currents.vn_kv[node])

    violations: list[Violation] = []
    pairs: list[PairResult] = []
    for (upstream, downstream), nodes in pair_nodes.items():
        u, d = devices[upstream], devices[downstream]
        label = f"{names[upstream]} ({u.kind}) above {names[downstream]} ({d.kind})"
        worst: PairResult | None = None
        found: dict[str, Violation] = {}
        for node in nodes:
            for ka, case in ((currents.maximum(node), "max 3ph"), (currents.minimum(node)[0], currents.minimum(node)[1])):
                if math.isnan(ka):
                    continue
                i_d, i_u = seen(downstream, node, ka), seen(upstream, node, ka)
                checks = _pair_checks(u, d, i_u, i_d, options)
                for rule, t_u, t_d, margin, required in checks:
                    ok = margin >= required - 1e-9
                    if rule in ("cti", "fuse-fuse") and (worst is None or margin < worst.margin_s):
                        worst = PairResult(upstream, downstream, margin, node, i_d, t_u, t_d, ok)
                    if not ok:
                        message = (f"{label}: fault at {_name(model, node)} ({case}, {i_d:.0f} A at the downstream device): "
                                   f"{rule} margin {margin:.3f} s below {required:.3f} s "
                                   f"(upstream {_fmt(t_u)}, downstream {_fmt(t_d)})")
                        previous = found.get(rule)
                        if previous is None or margin - required < previous.margin - previous.required:
                            found[rule] = Violation(rule, downstream, upstream, node, i_d, i_u, t_d, t_u, margin, required, message)
        violations.extend(found.values())
        if worst is None:  # only fuse-saving checks: report the slow/clearing margin of the first node
            node = nodes[0]
            i_d = seen(downstream, node, currents.maximum(node))
            t_u, t_d = u.backup_time(i_d), d.clearing_time(i_d)
            worst = PairResult(upstream, downstream, t_u - t_d if math.isfinite(t_d) else math.inf, node, i_d, t_u, t_d, not found)
        elif found and worst.ok:
            worst = attrs.evolve(worst, ok=False)
        pairs.append(worst)

    for device, zone in zones.items():
        s = devices[device]
        lowest = None
        for node in zone:
            ka, case = currents.minimum(node)
            if math.isnan(ka):
                continue
            amps = seen(device, node, ka)
            if lowest is None or amps < lowest[0]:
                lowest = (amps, node, case)
        if lowest is None:
            continue
        amps, node, case = lowest
        required = s.pickup_a * options.sensitivity_margin
        if amps < required:
            violations.append(Violation(
                "sensitivity", device, None, node, amps, None, s.clearing_time(amps), None, amps / s.pickup_a, options.sensitivity_margin,
                f"{names[device]} ({s.kind}) is not sensitive enough: smallest fault current in its zone {amps:.0f} A "
                f"({case} at {_name(model, node)}) is below pickup {s.pickup_a:.0f} A × {options.sensitivity_margin:g} = {required:.0f} A",
            ))
    return CoordinationReport(tuple(pairs), tuple(violations), tuple(devices), {k: tuple(v) for k, v in zones.items()}, currents, names)


def _fmt(seconds: float | None) -> str:
    return "no trip" if seconds is None or not math.isfinite(seconds) else f"{seconds:.3f} s"


def _pair_checks(u: DeviceSettings, d: DeviceSettings, i_u: float, i_d: float, options: CoordinationOptions):
    """``(rule, t_upstream, t_downstream, margin, required)`` for one current; nothing when a device does not act."""
    if u.kind == "recloser" and d.kind == "fuse":
        checks = []
        melt, clear = d.fuse.melting.time(i_d), d.fuse.clearing.time(i_d)
        fast, slow = u.recloser.fast.time(i_u), u.recloser.slow.time(i_u)
        if u.recloser.fast_shots and math.isfinite(fast) and math.isfinite(melt):
            checks.append(("fuse-saving", fast, melt, melt - fast, 0.0))
        if math.isfinite(clear) and math.isfinite(slow):
            checks.append(("fuse-clearing", slow, clear, slow - clear, options.recloser_fuse_margin_s))
        return checks
    if u.kind == "fuse" and d.kind == "fuse":
        melt, clear = u.fuse.melting.time(i_u), d.fuse.clearing.time(i_d)
        if not (math.isfinite(melt) and math.isfinite(clear)):
            return []
        return [("fuse-fuse", melt, clear, options.fuse_ratio * melt - clear, 0.0)]
    t_u, t_d = u.backup_time(i_u), d.clearing_time(i_d)
    if not (math.isfinite(t_u) and math.isfinite(t_d)):
        return []
    return [("cti", t_u, t_d, t_u - t_d, options.cti_s)]
