"""The IEEE 13-node feeder built in code with the NetworkModel API.

Same data as ``dms_opendss/data/ieee13/IEEE13Nodeckt.dss`` (EPRI's OpenDSS model), expressed the
way a CIM100 file carries it: per-phase impedance matrices per km, single-phase regulator tanks
with ratio tap changers at the published steps (10, 8, 11), per-phase loads.
"""

from __future__ import annotations

import math

from dms_kernel.model import (
    ACLineSegment,
    ACLineSegmentPhase,
    BaseVoltage,
    ConnectivityNode,
    EnergyConsumer,
    EnergyConsumerPhase,
    EnergySource,
    LinearShuntCompensator,
    LoadBreakSwitch,
    LoadResponseCharacteristic,
    NetworkModel,
    PerLengthPhaseImpedance,
    PhaseImpedanceEntry,
    PowerTransformer,
    PowerTransformerEnd,
    RatioTapChanger,
    TransformerTank,
)

MILE_KM = 1.609344
FT_KM = 0.0003048
F = 60.0

# line codes (ohm/mile, nF/mile), lower triangles row by row
CODES = {
    "mtx601": (3, [0.3465, 0.1560, 0.3375, 0.1580, 0.1535, 0.3414], [1.0179, 0.5017, 1.0478, 0.4236, 0.3849, 1.0348], None),
    "mtx602": (3, [0.7526, 0.1580, 0.7475, 0.1560, 0.1535, 0.7436], [1.1814, 0.4236, 1.1983, 0.5017, 0.3849, 1.2112], None),
    "mtx603": (2, [1.3238, 0.2066, 1.3294], [1.3569, 0.4591, 1.3471], None),
    "mtx604": (2, [1.3238, 0.2066, 1.3294], [1.3569, 0.4591, 1.3471], None),
    "mtx605": (1, [1.3292], [1.3475], None),
    "mtx606": (3, [0.791721, 0.318476, 0.781649, 0.28345, 0.318476, 0.791721],
               [0.438352, 0.0276838, 0.396697, -0.0184204, 0.0276838, 0.438352], [383.948, 0, 383.948, 0, 0, 383.948]),
    "mtx607": (1, [1.3425], [0.5124], [236.0]),
}
# a matrix line code without cmatrix keeps OpenDSS's default c1=3.4, c0=1.6 nF per length unit
# (here per mile): diagonal (2 c1 + c0) / 3 = 2.8, off-diagonal (c0 - c1) / 3 = -0.6 nF/mile
DEFAULT_C = (2.8, -0.6)

LINES = [  # name, bus1, bus2, phases (in matrix order), code, length ft
    ("650632", "rg60", "632", "ABC", "mtx601", 2000),
    ("632670", "632", "670", "ABC", "mtx601", 667),
    ("670671", "670", "671", "ABC", "mtx601", 1333),
    ("671680", "671", "680", "ABC", "mtx601", 1000),
    ("632633", "632", "633", "ABC", "mtx602", 500),
    ("632645", "632", "645", "CB", "mtx603", 500),
    ("645646", "645", "646", "CB", "mtx603", 300),
    ("692675", "692", "675", "ABC", "mtx606", 500),
    ("671684", "671", "684", "AC", "mtx604", 300),
    ("684611", "684", "611", "C", "mtx605", 300),
    ("684652", "684", "652", "A", "mtx607", 800),
]

LOADS = [  # name, bus, connection, model(Z/I/P), kV base, per-phase (phase, kW, kvar) or total
    ("671", "671", "D", "P", "4.16", None, (1155, 660)),
    ("634a", "634", "Y", "P", "0.48", [("A", 160, 110)], None),
    ("634b", "634", "Y", "P", "0.48", [("B", 120, 90)], None),
    ("634c", "634", "Y", "P", "0.48", [("C", 120, 90)], None),
    ("645", "645", "Y", "P", "4.16", [("B", 170, 125)], None),
    ("646", "646", "D", "Z", "4.16", [("B", 230, 132)], None),  # delta B = branch B-C
    ("692", "692", "D", "I", "4.16", [("C", 170, 151)], None),  # delta C = branch C-A
    ("675a", "675", "Y", "P", "4.16", [("A", 485, 190)], None),
    ("675b", "675", "Y", "P", "4.16", [("B", 68, 60)], None),
    ("675c", "675", "Y", "P", "4.16", [("C", 290, 212)], None),
    ("611", "611", "Y", "I", "4.16", [("C", 170, 80)], None),
    ("652", "652", "Y", "Z", "4.16", [("A", 128, 86)], None),
    ("670a", "670", "Y", "P", "4.16", [("A", 17, 10)], None),
    ("670b", "670", "Y", "P", "4.16", [("B", 66, 38)], None),
    ("670c", "670", "Y", "P", "4.16", [("C", 117, 68)], None),
]

PUBLISHED_STEPS = {"reg1": 10, "reg2": 8, "reg3": 11}


def build() -> NetworkModel:
    m = NetworkModel("ieee13-code")
    bv = {kv: m.add(BaseVoltage(f"bv_{kv}", name=f"{kv} kV", nominal_kv=float(kv))) for kv in ("115", "4.16", "0.48")}
    buses = ["sourcebus", "650", "rg60", "632", "633", "634", "645", "646", "670", "671", "680", "684", "611", "652", "692", "675"]
    nodes = {b: m.add(ConnectivityNode(f"cn_{b}", name=b.upper() if b == "rg60" else b)) for b in buses}

    src = m.add(EnergySource("src", name="source", base_voltage=bv["115"].mrid, nominal_kv=115.0, voltage_kv=115.0 * 1.0001,
                             voltage_angle_deg=30.0, r_ohm=0.16037668, x_ohm=0.64150673, r0_ohm=0.17960358, x0_ohm=0.53881075))
    m.connect(src, nodes["sourcebus"])

    sub = m.add(PowerTransformer("sub", name="sub", vector_group="Dy1"))
    t1, t2 = m.connect(sub, nodes["sourcebus"], nodes["650"])
    m.add(PowerTransformerEnd("sub_e1", power_transformer="sub", terminal=t1.mrid, end_number=1, rated_s_mva=5.0, rated_u_kv=115.0,
                              r_ohm=0.013225, x_ohm=0.2116, connection="D", base_voltage=bv["115"].mrid))
    m.add(PowerTransformerEnd("sub_e2", power_transformer="sub", terminal=t2.mrid, end_number=2, rated_s_mva=5.0, rated_u_kv=4.16,
                              r_ohm=0.0000173056, connection="Yn", grounded=True, base_voltage=bv["4.16"].mrid))

    zb = 2.4 * 2.4 / 1.666
    for reg, phase in (("reg1", "A"), ("reg2", "B"), ("reg3", "C")):
        pt = m.add(PowerTransformer(reg, name=reg, phases=phase))
        tank = m.add(TransformerTank(f"{reg}_tank", name=reg, power_transformer=reg))
        a, b = m.connect(pt, nodes["650"], nodes["rg60"], phases=phase + "N")
        m.add(PowerTransformerEnd(f"{reg}_e1", power_transformer=reg, transformer_tank=tank.mrid, terminal=a.mrid, end_number=1,
                                  rated_s_mva=1.666, rated_u_kv=2.4, r_ohm=0.00005 * zb, x_ohm=0.0001 * zb, connection="I", phases=phase + "N"))
        end2 = m.add(PowerTransformerEnd(f"{reg}_e2", power_transformer=reg, transformer_tank=tank.mrid, terminal=b.mrid, end_number=2,
                                         rated_s_mva=1.666, rated_u_kv=2.4, r_ohm=0.00005 * zb, connection="I", phases=phase + "N"))
        m.add(RatioTapChanger(f"{reg}_tc", name=reg, transformer_end=end2.mrid, low_step=-16, high_step=16, neutral_step=0,
                              normal_step=0, step=PUBLISHED_STEPS[reg], step_voltage_increment_percent=0.625, neutral_u_kv=2.4,
                              control_enabled=True, target_u_kv=122 * 20 / 1000, target_deadband_kv=2 * 20 / 1000))

    xfm = m.add(PowerTransformer("xfm1", name="xfm1"))
    a, b = m.connect(xfm, nodes["633"], nodes["634"])
    m.add(PowerTransformerEnd("xfm1_e1", power_transformer="xfm1", terminal=a.mrid, end_number=1, rated_s_mva=0.5, rated_u_kv=4.16,
                              r_ohm=0.1903616, x_ohm=0.02 * 4.16**2 / 0.5, connection="Yn", base_voltage=bv["4.16"].mrid))
    m.add(PowerTransformerEnd("xfm1_e2", power_transformer="xfm1", terminal=b.mrid, end_number=2, rated_s_mva=0.5, rated_u_kv=0.48,
                              r_ohm=0.0025344, connection="Yn", base_voltage=bv["0.48"].mrid))

    for code, (n, r, x, c) in CODES.items():
        entries = []
        k = 0
        for i in range(1, n + 1):
            for j in range(1, i + 1):
                c_nf = c[k] if c else DEFAULT_C[0 if i == j else 1]
                b_us = c_nf * 2 * math.pi * F * 1e-3 / MILE_KM
                entries.append(PhaseImpedanceEntry(i, j, r[k] / MILE_KM, x[k] / MILE_KM, b_us))
                k += 1
        m.add(PerLengthPhaseImpedance(code, name=code, conductor_count=n, entries=entries))

    for name, b1, b2, phases, code, ft in LINES:
        line = m.add(ACLineSegment(f"line_{name}", name=name, phases=phases, length_km=ft * FT_KM, per_length_impedance=code,
                                   base_voltage=bv["4.16"].mrid))
        m.connect(line, nodes[b1], nodes[b2], phases="".join(sorted(phases)))
        for seq, ph in enumerate(phases, start=1):
            m.add(ACLineSegmentPhase(f"line_{name}_{ph}", line=line.mrid, phase=ph, sequence_number=seq))

    sw = m.add(LoadBreakSwitch("sw_671692", name="671692", rated_current_a=400.0))
    m.connect(sw, nodes["671"], nodes["692"])

    lrc = {
        "P": m.add(LoadResponseCharacteristic("lrc_p", name="Constant kVA")),
        "Z": m.add(LoadResponseCharacteristic("lrc_z", name="Constant Z", p_constant_impedance=1, p_constant_power=0,
                                              q_constant_impedance=1, q_constant_power=0)),
        "I": m.add(LoadResponseCharacteristic("lrc_i", name="Constant I", p_constant_current=1, p_constant_power=0,
                                              q_constant_current=1, q_constant_power=0)),
    }
    for name, bus, conn, model, kv, phases, total in LOADS:
        p = sum(x[1] for x in phases) if phases else total[0]
        q = sum(x[2] for x in phases) if phases else total[1]
        code = "".join(x[0] for x in phases) if phases else "ABC"
        if phases and conn == "D":
            code = {"A": "AB", "B": "BC", "C": "AC"}[phases[0][0]]
        load = m.add(EnergyConsumer(f"ld_{name}", name=name, p_mw=p / 1000, q_mvar=q / 1000, connection=conn,
                                    load_response=lrc[model].mrid, base_voltage=bv[kv].mrid, phases=code))
        m.connect(load, nodes[bus])
        for ph, kw, kvar in phases or ():
            m.add(EnergyConsumerPhase(f"ld_{name}_{ph}", name=f"{name}_{ph}", consumer=load.mrid, phase=ph,
                                      p_mw=kw / 1000, q_mvar=kvar / 1000))

    cap1 = m.add(LinearShuntCompensator("cap1", name="cap1", b_per_section_us=600e3 / 4160**2 * 1e6, nominal_kv=4.16,
                                        base_voltage=bv["4.16"].mrid))
    m.connect(cap1, nodes["675"])
    cap2 = m.add(LinearShuntCompensator("cap2", name="cap2", b_per_section_us=100e3 / 2400**2 * 1e6, nominal_kv=2.4,
                                        base_voltage=bv["4.16"].mrid, phases="C"))
    m.connect(cap2, nodes["611"])
    m.validate()
    return m
