"""IEC 61850 ingest benchmark: simulator server → source (client process) → point database, vs. a raw
libiec61850 report client against the same server in the same run.

Both sides use the same mechanism, reports: the unbuffered RCB ``IED1LD0/LLN0.RP.urcbMX01`` over the data
set ``dsMX`` (the same 4 LNs x 100 MV objects, data-object members), trigger options data-change +
quality-change + GI, the server's bufTm (50 ms), GI at enable; every value a report includes is counted.
The plugin runs in its default ``mode = "report"``; the raw client enables the RCB with libiec61850's
C API (ctypes: getRCBValues/setRCBValues, installReportHandler) and decodes the float of each included
member in its report callback. Both clients run in their own process: the plugin's worker
(``python -m dms_iec61850.worker``) and the raw client (this file run with ``--raw-client``), so neither
competes for the benchmark process's GIL with the simulated IED server and the twin churn. The twin
changes every value every 4 ms (fixed schedule) in the benchmark process during both phases; the offered
rate (twin values changed per second) is measured per phase and reported, so the phases can be compared.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

N_LN, N_DO = 4, 100
# fixed schedule: 100 twin cycles/s x 400 values = 40,000 offered changes/s in both phases. Reports deliver what
# changes, so neither client can exceed the offered rate; it is set to what the benchmark process (server, twin
# churn and, in the plugin phase, the kernel) sustains on 2 shared cores, so both phases are offered the same load
CHURN_PERIOD_S = 0.010


def _entries():
    from dms_hookspecs import PointKind
    from dms_simulator import PointMapEntry

    return [PointMapEntry(f"B/{g}/{i}", f"IED1LD0/GGIO{g}.AnIn{i}.mag.f", PointKind.ANALOG, 1.0)
            for g in range(1, N_LN + 1) for i in range(1, N_DO + 1)]


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def raw_client(port: int, seconds: float) -> None:
    """The library's own report client, in its own process: URCB over dsMX, every included value counted.

    Prints ``READY`` once the RCB is enabled (GI included), then one ``RESULT`` JSON line.
    """
    import ctypes
    import threading

    import pyiec61850.pyiec61850 as iec
    from dms_iec61850.native import REPORT_CALLBACK, lib

    rcb_ref = b"IED1LD0/LLN0.RP.urcbMX01"
    state = {"count": 0, "reports": 0}
    lock = threading.Lock()

    def on_report(_parameter, report):
        values = lib.ClientReport_getDataSetValues(report)
        n = 0
        for m in range(N_LN * N_DO):
            if lib.ClientReport_getReasonForInclusion(report, m):
                member = lib.MmsValue_getElement(values, m)  # MV: (mag (f), q, t)
                lib.MmsValue_toDouble(lib.MmsValue_getElement(lib.MmsValue_getElement(member, 0), 0))
                n += 1
        with lock:
            state["count"] += n
            state["reports"] += 1

    callback = REPORT_CALLBACK(on_report)
    con, error = lib.IedConnection_create(), ctypes.c_int(0)
    lib.IedConnection_setConnectTimeout(con, 1000)
    lib.IedConnection_setRequestTimeout(con, 1000)
    lib.IedConnection_connect(con, ctypes.byref(error), b"127.0.0.1", port)
    if error.value != iec.IED_ERROR_OK:
        print("RESULT " + json.dumps({"error": f"connect failed (IedClientError {error.value})"}), flush=True)
        return
    rcb = lib.IedConnection_getRCBValues(con, ctypes.byref(error), rcb_ref, None)
    lib.IedConnection_installReportHandler(con, rcb_ref, lib.ClientReportControlBlock_getRptId(rcb), callback, None)
    lib.ClientReportControlBlock_setTrgOps(rcb, iec.TRG_OPT_DATA_CHANGED | iec.TRG_OPT_QUALITY_CHANGED | iec.TRG_OPT_GI)
    lib.ClientReportControlBlock_setOptFlds(rcb, iec.RPT_OPT_SEQ_NUM | iec.RPT_OPT_TIME_STAMP | iec.RPT_OPT_REASON_FOR_INCLUSION
                                            | iec.RPT_OPT_DATA_SET | iec.RPT_OPT_CONF_REV)
    lib.ClientReportControlBlock_setRptEna(rcb, True)
    lib.IedConnection_setRCBValues(con, ctypes.byref(error), rcb, iec.RCB_ELEMENT_TRG_OPS | iec.RCB_ELEMENT_OPT_FLDS
                                   | iec.RCB_ELEMENT_RPT_ENA, True)
    lib.ClientReportControlBlock_setGI(rcb, True)
    lib.IedConnection_setRCBValues(con, ctypes.byref(error), rcb, iec.RCB_ELEMENT_GI, True)
    if error.value != iec.IED_ERROR_OK:
        print("RESULT " + json.dumps({"error": f"enabling the RCB failed (IedClientError {error.value})"}), flush=True)
        return
    time.sleep(0.3)
    print("READY", flush=True)
    with lock:
        count0, reports0 = state["count"], state["reports"]
    started, cpu0 = time.monotonic(), time.process_time()
    time.sleep(seconds)
    with lock:
        count, reports = state["count"] - count0, state["reports"] - reports0
    elapsed, cpu = time.monotonic() - started, time.process_time() - cpu0
    lost = lib.IedConnection_getState(con) != iec.IED_STATE_CONNECTED
    lib.IedConnection_close(con)
    lib.IedConnection_destroy(con)
    print("RESULT " + json.dumps({"count": count, "elapsed": elapsed, "reports": reports, "cpu_s": cpu,
                                  "link_lost": lost}), flush=True)


async def _run(seconds: float) -> dict:
    import socket

    import dms_iec61850.plugin as plugin
    from dms_hookspecs import PointSpec, Sink, hookimpl
    from dms_iec61850.server import Iec61850Server
    from dms_kernel.testing import build_kernel
    from dms_simulator import StaticTwin, write_point_map

    class _Null(Sink):
        async def write(self, events):
            pass

    class sinks:  # noqa: N801
        @staticmethod
        @hookimpl
        def dms_add_sink_types(registry):
            registry.add("null", _Null)

    entries = _entries()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    tmp = Path(tempfile.mkdtemp())
    write_point_map(tmp / "map.csv", entries)
    twin = StaticTwin([PointSpec(e.point, e.kind) for e in entries])
    server = Iec61850Server("bench", {"points_file": str(tmp / "map.csv"), "port": port}, twin)
    await server.start()
    names = [e.point for e in entries]
    stop = False
    churned = [0]  # twin cycles (each changes every value)

    async def churn():
        # paced on a fixed schedule (not "sleep after the work"), so the offered rate does not depend on how
        # busy the benchmark process is; it is measured per phase anyway
        n, due = 0, time.monotonic()
        while not stop:
            n += 1
            twin.set_many({name: n + k * 1e-3 for k, name in enumerate(names)})
            churned[0] += 1
            due = max(due + CHURN_PERIOD_S, time.monotonic() - CHURN_PERIOD_S)  # no catch-up burst after a stall
            await asyncio.sleep(max(0.0, due - time.monotonic()))

    churner = asyncio.create_task(churn())
    half = seconds / 2
    try:
        # -- plugin: source in a kernel, its libiec61850 client in a child process -----------------------
        kernel = build_kernel(("iec61850", plugin), sinks, deployment=f'''
[deployment]
name = "bench"
[[sources]]
name = "ied"
type = "iec61850"
[sources.settings]
points_file = "{tmp / 'map.csv'}"
port = {port}
mode = "report"
report_type = "unbuffered"
[[sinks]]
name = "null"
type = "null"
''')
        async with kernel:
            source = kernel.sources["ied"]
            deadline = time.monotonic() + 10
            while not source.connected and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            worker = source._process.pid
            before, batches, churn0 = kernel.counters["updates"], source.counters["batches"], churned[0]
            started, bench_cpu0, worker_cpu0 = time.monotonic(), time.process_time(), _cpu_s(worker)
            await asyncio.sleep(half)
            elapsed = time.monotonic() - started
            plugin_count = kernel.counters["updates"] - before
            plugin_rate = plugin_count / elapsed
            plugin_offered = (churned[0] - churn0) * len(names) / elapsed
            plugin_polls = (source.counters["batches"] - batches) / elapsed
            plugin_bench_cpu = (time.process_time() - bench_cpu0) / elapsed
            worker_cpu = (_cpu_s(worker) - worker_cpu0) / elapsed
            plugin_link_losses = source.counters["link_losses"]

        # -- raw: the library's report client in its own process, same server, same churn ---------------
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(Path(__file__).resolve()), "--raw-client", str(port), str(half),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        raw, churn0, started, bench_cpu0 = {}, churned[0], time.monotonic(), time.process_time()
        try:
            async with asyncio.timeout(30 + 2 * half):
                while line := (await process.stdout.readline()).decode():
                    if line.startswith("READY"):
                        churn0, started, bench_cpu0 = churned[0], time.monotonic(), time.process_time()
                    elif line.startswith("RESULT "):
                        elapsed = time.monotonic() - started
                        raw_offered = (churned[0] - churn0) * len(names) / elapsed
                        raw_bench_cpu = (time.process_time() - bench_cpu0) / elapsed
                        raw = json.loads(line[len("RESULT "):])
                await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        if "count" not in raw:
            stderr = (await process.stderr.read()).decode(errors="replace").strip().splitlines()
            raise RuntimeError(f"raw client failed: {raw.get('error') or (stderr[-1] if stderr else 'no result')}")
        raw_rate = raw["count"] / raw["elapsed"]
    finally:
        stop = True
        await churner
        await server.stop()
    return {
        "protocol": "iec61850",
        "plugin_updates_per_s": round(plugin_rate),
        "raw_updates_per_s": round(raw_rate),
        "plugin_offered_per_s": round(plugin_offered),
        "raw_offered_per_s": round(raw_offered),
        "raw_link_lost": raw["link_lost"], "plugin_link_losses": plugin_link_losses,
        "plugin_reports_per_s": round(plugin_polls),
        "raw_reports_per_s": round(raw["reports"] / raw["elapsed"]),
        # CPU cores busy: the client process, and the benchmark process (server + twin churn, + kernel for the plugin)
        "plugin_worker_cpu": round(worker_cpu, 2),
        "raw_client_cpu": round(raw["cpu_s"] / raw["elapsed"], 2),
        "plugin_bench_cpu": round(plugin_bench_cpu, 2),
        "raw_bench_cpu": round(raw_bench_cpu, 2),
        "notes": f"MMS reports, URCB over {N_LN} LNs x {N_DO} MV objects (FC MX, data-object members), bufTm 50 ms, "
                 "every included value counted; plugin = source + worker process (value, q, t per point, JSON lines "
                 "to the kernel); raw = ctypes report callback in its own process (value only); "
                 f"twin churn offered {plugin_offered:,.0f}/s (plugin phase) vs {raw_offered:,.0f}/s "
                 f"(raw phase); reports/s plugin {plugin_polls:,.0f} vs raw {raw['reports'] / raw['elapsed']:,.0f}; "
                 f"CPU cores: worker {worker_cpu:.2f} + bench {plugin_bench_cpu:.2f} vs raw client "
                 f"{raw['cpu_s'] / raw['elapsed']:.2f} + bench {raw_bench_cpu:.2f}",
    }


def measure(seconds: float = 8.0) -> dict:
    return asyncio.run(_run(seconds))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--raw-client":
        raw_client(int(sys.argv[2]), float(sys.argv[3]))
    else:
        print(measure())
