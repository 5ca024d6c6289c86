"""Coordination check on a radial feeder and on CIGRE MV with recloser–fuse–relay chains."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import attrs
import pandapower.shortcircuit as sc
import pytest

from dms_kernel.model import LoadBreakSwitch
from dms_pandapower.examples import pandapower_example
from dms_protection.coordination import CoordinationOptions, check_coordination
from dms_protection.curves import inverse_time
from dms_protection.settings import DeviceSettings, Overcurrent
from dms_protection.shortcircuit import short_circuit_currents

from .chains import FUSE_100, recloser_settings


def test_curves_iec_and_ieee_reference_values():
    # IEC 60255-151 standard inverse, TMS 1, 10x pickup: 0.14 / (10^0.02 - 1) = 2.971 s
    assert inverse_time("iec_standard_inverse", 1000, 100, 1.0) == pytest.approx(2.9706, rel=1e-4)
    assert inverse_time("iec_very_inverse", 1000, 100, 1.0) == pytest.approx(1.5)
    assert inverse_time("iec_extremely_inverse", 1000, 100, 1.0) == pytest.approx(80 / 99)
    assert inverse_time("iec_long_time_inverse", 1000, 100, 1.0) == pytest.approx(120 / 9)
    # IEEE C37.112 very inverse, TD 1, M = 5: 19.61/24 + 0.491
    assert inverse_time("ieee_very_inverse", 500, 100, 1.0) == pytest.approx(19.61 / 24 + 0.491)
    assert inverse_time("ieee_moderately_inverse", 500, 100, 1.0) == pytest.approx(0.0515 / (5**0.02 - 1) + 0.114)
    assert inverse_time("ieee_extremely_inverse", 500, 100, 1.0) == pytest.approx(28.2 / 24 + 0.1217)
    assert math.isinf(inverse_time("iec_standard_inverse", 100, 100, 1.0))
    # fuse table: log-log interpolation between (1000 A, 0.2 s) and (3000 A, 0.05 s) at the geometric mean
    assert FUSE_100.melting.time(math.sqrt(1000 * 3000)) == pytest.approx(math.sqrt(0.2 * 0.05))
    assert math.isinf(FUSE_100.melting.time(150))


def test_short_circuit_matches_pandapower_reference(radial):
    ours = short_circuit_currents(radial)
    net = pandapower_example("radial_32")
    net.line["endtemp_degree"] = 80.0
    for case, fault in (("max", "3ph"), ("min", "3ph"), ("max", "2ph"), ("min", "2ph")):
        sc.calc_sc(net, case=case, fault=fault, ip=False, branch_results=False)
        for bus in net.bus.index:
            node = f"bus_{bus}"
            assert ours.ka(node, case, fault) == pytest.approx(net.res_bus_sc.at[bus, "ikss_ka"], rel=1e-6), (node, case, fault)
    # the nodes inserted for the recloser and the fuse carry the currents of the buses they split
    (split,) = [n for n in radial.nodes_of("R1") if n != "R1_node"]
    assert ours.maximum("R1_node") == pytest.approx(ours.maximum(split), rel=1e-6)
    assert ("max", "1ph") in ours.skipped  # no zero-sequence data in this network


def test_radial_known_good_settings_pass(radial, radial_good):
    report = check_coordination(radial, radial_good)
    assert report.ok, [v.message for v in report.violations]
    assert {(p.upstream, p.downstream) for p in report.pairs} == {("switch_0", "R1"), ("R1", "FU1")}
    pair = report.pair("switch_0", "R1")
    assert pair.margin_s >= 0.3
    # the worst case is the maximum fault current right behind the recloser
    assert pair.node == "R1_node"
    assert pair.t_upstream_s - pair.t_downstream_s == pytest.approx(pair.margin_s)


def test_radial_miscoordinated_relay_is_reported_with_pair_and_margin(radial, radial_good):
    bad = dict(radial_good)
    bad["switch_0"] = DeviceSettings("switch_0", "relay", overcurrent=[Overcurrent(600.0, "iec_standard_inverse", 0.1)])
    report = check_coordination(radial, bad)
    assert not report.ok
    (violation,) = [v for v in report.violations if v.rule == "cti"]
    assert (violation.upstream, violation.downstream) == ("switch_0", "R1")
    # recompute the margin from the curves at the reported current
    t_u = inverse_time("iec_standard_inverse", violation.upstream_current_a, 600.0, 0.1)
    t_d = recloser_settings("R1").clearing_time(violation.current_a)
    assert violation.margin == pytest.approx(t_u - t_d)
    assert violation.margin < 0.3 and violation.required == 0.3
    assert "switch_0" not in violation.message or "F0 CB" in violation.message
    assert "F0 CB (relay) above R1 (recloser)" in violation.message


def test_fuse_recloser_rules(radial, radial_good):
    # a slow fast-curve: the fuse melts first (fuse saving fails)
    slow_fast = dict(radial_good)
    sequence = recloser_settings("R1").recloser
    slow_fast["R1"] = DeviceSettings("R1", "recloser", recloser=attrs.evolve(sequence, fast=Overcurrent(400.0, "iec_standard_inverse", 0.2)))
    report = check_coordination(radial, slow_fast)
    rules = {(v.rule, v.upstream, v.downstream) for v in report.violations}
    assert ("fuse-saving", "R1", "FU1") in rules
    # a fast slow-curve: the recloser's last trip beats the fuse's clearing
    fast_slow = dict(radial_good)
    fast_slow["R1"] = DeviceSettings("R1", "recloser", recloser=attrs.evolve(sequence, slow=Overcurrent(400.0, "iec_extremely_inverse", 0.01)))
    report = check_coordination(radial, fast_slow)
    assert ("fuse-clearing", "R1", "FU1") in {(v.rule, v.upstream, v.downstream) for v in report.violations}


def test_sensitivity(radial, radial_good):
    insensitive = dict(radial_good)
    insensitive["R1"] = recloser_settings("R1", pickup=4000.0)
    report = check_coordination(radial, insensitive, CoordinationOptions(sensitivity_margin=1.5))
    (violation,) = [v for v in report.violations if v.rule == "sensitivity"]
    assert violation.downstream == "R1"
    minimum = min(report.currents.minimum(n)[0] for n in report.zones["R1"]) * 1000
    assert violation.current_a == pytest.approx(minimum)
    assert violation.current_a < 4000 * 1.5


def test_cigre_known_good_and_miscoordinated(cigre, cigre_good):
    report = check_coordination(cigre, cigre_good)
    assert report.ok, [v.message for v in report.violations]
    assert {(p.upstream, p.downstream) for p in report.pairs} == {("switch_6", "R1"), ("R1", "FU1")}
    # the HV relay sees the MV fault current scaled by 20/110
    pair = report.pair("switch_6", "R1")
    assert pair.t_upstream_s == pytest.approx(inverse_time("iec_standard_inverse", pair.current_a * 20 / 110, 120.0, 0.3))
    bad = dict(cigre_good)
    bad["switch_6"] = DeviceSettings("switch_6", "relay", overcurrent=[Overcurrent(120.0, "iec_standard_inverse", 0.05)])
    report = check_coordination(cigre, bad)
    violations = [v for v in report.violations if v.rule == "cti"]
    assert [(v.upstream, v.downstream) for v in violations] == [("switch_6", "R1")]
    assert violations[0].margin < 0.3


def test_cigre_rerun_after_restoration_via_tie(cigre, cigre_good):
    """After a tie closes and the recloser opens, the fuse's lateral is fed from feeder 2: the pair changes."""
    before = check_coordination(cigre, cigre_good)
    assert ("R1", "FU1") in {(p.upstream, p.downstream) for p in before.pairs}
    cigre.get("R1").open = True  # fault isolated upstream
    cigre.by_name("S1", LoadBreakSwitch).open = False  # tie closed: restoration from Trafo 0-12
    after = check_coordination(cigre, cigre_good)
    chain = {(p.upstream, p.downstream) for p in after.pairs}
    assert ("R1", "FU1") not in chain
    assert "FU1" in after.zones  # still protected, now without a device above it in the store


def test_cli_check_and_plot(tmp_path, radial_good):
    devices = tmp_path / "devices.json"
    # the CLI loads the plain example (no recloser/fuse): only the feeder relay applies
    devices.write_text(json.dumps([radial_good["switch_0"].to_dict()]))
    out = subprocess.run([sys.executable, "-m", "dms_kernel", "protection", "check", "radial_32", "--devices", str(devices)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "coordination ok" in out.stdout
    image = tmp_path / "tcc.svg"
    out = subprocess.run([sys.executable, "-m", "dms_kernel", "protection", "plot", "radial_32", "--devices", str(devices),
                          "--node", "F0 T5", "--output", str(image)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert image.stat().st_size > 1000 and image.read_text().lstrip().startswith("<?xml")
