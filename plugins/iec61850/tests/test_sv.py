"""Sampled Values over a real veth pair into a network namespace (libiec61850 SVPublisher and SVReceiver, no mocks).

The merging unit (``python -m dms_iec61850.sv publish``: a 9-2LE stream at 80 samples per cycle
of a 50 Hz waveform with 3rd/5th/7th harmonics, in real time) runs in the namespace; Leitstand's
:class:`~dms_iec61850.sv.SvPhasorSubscriber` receives on our end of the veth pair and computes RMS
and fundamental phasors (one-cycle DFT, :mod:`dms_pmu.sv`). Needs root and ``ip``: skipped
otherwise, but with ``CI`` set it fails instead.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("dms_pmu")

from dms_iec61850.sv import SvError, SvPhasorSubscriber, SvSubscriber  # noqa: E402

APP_ID = 0x4001
U = 230 * math.sqrt(2)
SIGNAL = {
    "UA": [[1, U, 30.0], [3, 0.08 * U, -45.0], [5, 0.05 * U, 110.0], [7, 0.03 * U, 200.0]],
    "UB": [[1, U, -90.0], [3, 0.08 * U, -45.0], [5, 0.05 * U, 110.0 + 120.0], [7, 0.03 * U, 200.0 - 120.0]],
    "IA": [[1, 400 * math.sqrt(2), -10.0], [3, 60.0, 20.0], [5, 40.0, -70.0], [7, 25.0, 160.0]],
}


def publish(veth, cycles: int) -> subprocess.Popen:
    return subprocess.Popen(
        ["ip", "netns", "exec", veth.ns, sys.executable, "-m", "dms_iec61850.sv", "publish", "--interface", veth.inside,
         "--app-id", hex(APP_ID), "--sv-id", "MU01", "--cycles", str(cycles), "--signal", json.dumps(SIGNAL)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def analytic(components):
    rms = math.sqrt(sum(a * a / 2 for _, a, _ in components))
    _, a1, p1 = components[0]
    return rms, a1 / math.sqrt(2), (p1 + 180) % 360 - 180


def test_merging_unit_stream_to_rms_and_phasors(veth):
    cycles = 50  # one second at 80 samples per cycle: 4000 frames
    reports: list[tuple[dict, float]] = []
    lock = threading.Lock()

    def on_values(values, source_time):
        with lock:
            reports.append((values, source_time))

    with SvPhasorSubscriber(veth.outside, on_values, app_id=APP_ID) as phasors:
        process = publish(veth, cycles)
        out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
        assert json.loads(out.splitlines()[-1]) == {"published": cycles * 80}
        time.sleep(0.2)
        received = phasors.subscriber.received
        processor = phasors.processors["MU01"]
    assert received >= 0.99 * cycles * 80, f"received {received} of {cycles * 80} frames"
    assert len(reports) >= cycles - 2 - processor.gaps
    for values, source_time in reports:
        assert abs(time.time() - source_time) < 5
        for channel, components in SIGNAL.items():
            rms, magnitude, angle = analytic(components)
            assert values[f"MU01/{channel}/rms"] == pytest.approx(rms, rel=1e-3), channel
            assert values[f"MU01/{channel}/mag"] == pytest.approx(magnitude, rel=1e-3), channel
            # angle referred to the top of the second (smpCnt 0), within 0.1 %
            assert abs((values[f"MU01/{channel}/ang_deg"] - angle + 180) % 360 - 180) <= 1e-3 * abs(angle), channel
        assert values["MU01/IC/mag"] == 0.0 and values["MU01/IC/rms"] == 0.0


def test_other_app_id_ignored_and_bad_interface_is_an_error(veth):
    seen = []
    with SvSubscriber(veth.outside, lambda *args: seen.append(args), app_id=APP_ID + 1):
        process = publish(veth, 5)
        process.communicate(timeout=30)
        time.sleep(0.1)
    assert not seen
    with pytest.raises(SvError):
        SvSubscriber("no-such-if0", lambda *args: None).start()


async def test_kernel_source_publishes_phasors_and_invalidates_when_the_stream_stops(veth, make_kernel):
    import dms_iec61850.plugin

    from dms_hookspecs import Validity

    kernel = make_kernel(("iec61850", dms_iec61850.plugin), deployment=f"""
        [deployment]
        name = "sv"
        [[sources]]
        name = "mu"
        type = "iec61850-sv"
        settings = {{ interface = "{veth.outside}", app_id = {APP_ID}, sv_id = "MU01", report_cycles = 5, timeout_s = 0.5 }}
    """)
    async with kernel:
        await asyncio.sleep(0.3)  # the subscriber is listening
        process = publish(veth, 50)
        await asyncio.to_thread(process.communicate, timeout=30)
        assert process.returncode == 0
        seen = kernel.points.read("MU01/UA/mag")
        _, magnitude, angle = analytic(SIGNAL["UA"])
        assert seen.value == pytest.approx(magnitude, rel=1e-3) and seen.quality.validity is Validity.GOOD
        assert kernel.points.read("MU01/IA/rms").value == pytest.approx(analytic(SIGNAL["IA"])[0], rel=1e-3)
        await asyncio.sleep(1.0)  # the stream stopped: points invalid, last value kept
        stale = kernel.points.read("MU01/UA/mag")
        assert stale.quality.validity is Validity.INVALID and stale.value == pytest.approx(magnitude, rel=1e-3)


async def test_simulator_merging_unit_publishes_the_twins_voltages(veth_pair, make_kernel):
    """The field simulator's merging unit (twin power flow → 9-2LE) read by the kernel's SV source."""
    import dms_iec61850.plugin
    from dms_pandapower.examples import load_example
    from dms_simulator.grid import GridTwin

    from dms_hookspecs import Validity
    from dms_iec61850.sv_server import SvMergingUnit

    twin = GridTwin(load_example("cigre_mv"), speed=0.0, start_hour=12.0, noise=0.0, seed=1)
    unit = SvMergingUnit("mu", {"interface": veth_pair.publish, "bus": "Bus 11", "app_id": APP_ID, "sv_id": "MU11",
                                "samples_per_cycle": 80, "nominal_hz": 50}, twin)
    magnitude, angle = unit.phasor()
    kernel = make_kernel(("iec61850", dms_iec61850.plugin), deployment=f"""
        [deployment]
        name = "merging unit"
        [[sources]]
        name = "mu"
        type = "iec61850-sv"
        settings = {{ interface = "{veth_pair.receive}", app_id = {APP_ID}, sv_id = "MU11", report_cycles = 5 }}
    """)
    async with kernel:
        await unit.start()
        try:
            for _ in range(100):
                await asyncio.sleep(0.05)
                if kernel.points.read("MU11/UA/mag").quality.validity is Validity.GOOD:
                    break
            await asyncio.sleep(0.3)
            ua = kernel.points.read("MU11/UA/mag")
            ang = kernel.points.read("MU11/UA/ang_deg")
            ub = kernel.points.read("MU11/UB/ang_deg")
        finally:
            await unit.stop()
    print(f"\nBus 11: twin {magnitude:.1f} V at {math.degrees(angle):.3f} deg; merging unit → {ua.value:.1f} V at {ang.value:.3f} deg")
    assert ua.quality.validity is Validity.GOOD
    assert ua.value == pytest.approx(magnitude, rel=1e-3)  # 10 mV counts, one-cycle DFT
    assert abs((ang.value - math.degrees(angle) + 180) % 360 - 180) < 0.1
    assert abs((ub.value - ang.value + 120 + 180) % 360 - 180) < 0.1  # phase B lags by 120 degrees
