"""Short-circuit currents (IEC 60909, pandapower.shortcircuit) at every node of the model, for its
current switch states.

The model is converted with :func:`dms_pandapower.convert.to_pandapower` (balanced), so open
switches, out-of-service equipment and the source's short-circuit power (EnergySource r/x,
r0/x0) are those of the model. Per node: the initial symmetrical short-circuit current
``ikss_ka`` for ``case`` ``max``/``min`` and ``fault`` ``3ph``/``2ph``/``1ph``. A fault type the
model's data does not support (``1ph`` without zero-sequence data) is skipped and named in
:attr:`ShortCircuitCurrents.skipped`. Inverter-based generation (PV, batteries) is left out (its
contribution is current-limited, about its rated current, and pandapower needs extra data for it);
lines without ``endtemp_degree`` get 80 °C for the ``min`` case (IEC 60909 conductor temperature
at the end of the short circuit for cables under load: the usual planning assumption).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterable, Mapping

import attrs
import numpy as np

__all__ = ["ShortCircuitCurrents", "short_circuit_currents", "FAULTS", "CASES"]

log = logging.getLogger("leitstand.protection")

FAULTS = ("3ph", "2ph", "1ph")
CASES = ("max", "min")
LINE_END_TEMPERATURE_C = 80.0


@attrs.frozen
class ShortCircuitCurrents:
    """Initial short-circuit currents per node.

    :param currents: ``(case, fault)`` -> node mRID -> ``ikss`` in kA (NaN for de-energised nodes).
    :param vn_kv: node mRID -> nominal voltage.
    :param skipped: ``(case, fault)`` -> why it could not be computed.
    """

    currents: Mapping[tuple[str, str], Mapping[str, float]]
    vn_kv: Mapping[str, float]
    skipped: Mapping[tuple[str, str], str] = attrs.field(factory=dict)

    def ka(self, node: str, case: str = "max", fault: str = "3ph") -> float:
        return self.currents.get((case, fault), {}).get(node, math.nan)

    def minimum(self, node: str) -> tuple[float, str]:
        """The smallest phase-fault current at ``node`` (``min`` case, 2-phase, else 3-phase) and its label."""
        for fault in ("2ph", "3ph"):
            value = self.ka(node, "min", fault)
            if not math.isnan(value):
                return value, f"min {fault}"
        return self.ka(node, "max", "3ph"), "max 3ph"

    def maximum(self, node: str) -> float:
        return self.ka(node, "max", "3ph")


def short_circuit_currents(model, cases: Iterable[str] = CASES, faults: Iterable[str] = FAULTS) -> ShortCircuitCurrents:  # noqa: ANN001
    """IEC 60909 short-circuit currents at every node of ``model`` for its present switch states."""
    import pandapower.shortcircuit as sc

    from dms_pandapower.convert import to_pandapower

    network = to_pandapower(model)
    net = network.net
    if len(net.sgen):
        net.sgen["in_service"] = False
    if len(net.line) and ("endtemp_degree" not in net.line or net.line["endtemp_degree"].isna().any()):
        column = net.line["endtemp_degree"] if "endtemp_degree" in net.line else np.nan
        net.line["endtemp_degree"] = np.where(np.isnan(np.asarray(column, dtype=float)), LINE_END_TEMPERATURE_C, column)
    bus_of = network.bus_of
    nodes = list(bus_of)
    index = np.array([bus_of[n] for n in nodes])
    vn = dict(zip(nodes, net.bus.loc[index, "vn_kv"].astype(float).tolist(), strict=True))
    currents: dict[tuple[str, str], dict[str, float]] = {}
    skipped: dict[tuple[str, str], str] = {}
    for case in cases:
        for fault in faults:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    sc.calc_sc(net, case=case, fault=fault, ip=False, ith=False, branch_results=False)
                values = net.res_bus_sc["ikss_ka"].reindex(index).to_numpy(dtype=float)
            except Exception as exc:  # noqa: BLE001 - pandapower raises many types for missing data
                skipped[(case, fault)] = f"{type(exc).__name__}: {exc}"
                log.info("short circuit %s %s not computed: %s", case, fault, skipped[(case, fault)])
                continue
            if np.isnan(values).all():
                skipped[(case, fault)] = "no result (missing short-circuit data)"
                continue
            currents[(case, fault)] = dict(zip(nodes, values.tolist(), strict=True))
    return ShortCircuitCurrents(currents, vn, skipped)
