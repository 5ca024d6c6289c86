"""Study cases: CIGRE MV with on-load tap changers on both HV/MV transformers, a switched
capacitor bank at the end of feeder 1 and PV inverters with reactive-power headroom."""

from __future__ import annotations

import math

from dms_pandapower.examples import load_example

from dms_kernel.model import (
    EnergyConsumer,
    LinearShuntCompensator,
    PowerElectronicsConnection,
    PowerTransformer,
    RatioTapChanger,
)


def cigre_vvo(*, tap_range: int = 9, capacitor_sections: int = 3, load_scale: float = 1.0, pv_scale: float = 1.0):
    """CIGRE MV with VVO controls; ``load_scale``/``pv_scale`` set the operating point."""
    model = load_example("cigre_mv")
    for transformer in sorted(model.of_type(PowerTransformer), key=lambda t: t.mrid):
        end = model.ends(transformer)[0]
        model.add(RatioTapChanger(f"{transformer.mrid}_tap", name=f"{transformer.name} OLTC", transformer_end=end.mrid,
                                  low_step=-tap_range, high_step=tap_range, neutral_step=0, normal_step=0, step=0.0,
                                  step_voltage_increment_percent=1.5, neutral_u_kv=end.rated_u_kv))
    if capacitor_sections:
        node = _node_named(model, "bus 11")
        cap = model.add(LinearShuntCompensator("cap_11", name="C11", b_per_section_us=1.0e6 / (20.0**2) * 0.5 / 1e3 * 1e3 / 1e3,
                                               maximum_sections=capacitor_sections, sections=0.0, normal_sections=0, nominal_kv=20.0))
        # 0.5 Mvar per section at 20 kV: b = Q / U^2 = 0.5e6 / (20e3)^2 S = 1250 µS
        cap.b_per_section_us = 0.5e6 / (20e3**2) * 1e6
        model.connect(cap, node)
    for load in model.of_type(EnergyConsumer):
        load.p_mw *= load_scale
        load.q_mvar *= load_scale
    for pv in model.of_type(PowerElectronicsConnection):
        pv.p_mw *= pv_scale
        pv.rated_s_mva = max(pv.rated_s_mva, abs(pv.p_mw)) * 1.2
        pv.q_mvar = 0.0
    return model


def _node_named(model, name: str) -> str:
    from dms_kernel.model import ConnectivityNode

    for node in model.of_type(ConnectivityNode):
        if (node.name or "").lower() == name:
            return node.mrid
    raise KeyError(name)


def q_headroom(model) -> float:
    return sum(math.sqrt(max(p.rated_s_mva**2 - p.p_mw**2, 0.0)) for p in model.of_type(PowerElectronicsConnection))
