"""IEC 61850 ingest benchmark: simulator server → source (client process) → point database, vs. a raw
libiec61850 polling loop against the same server in the same run.

Both sides poll (the source has no report support yet): one MMS ``readObject`` per logical node and FC
per cycle (FC MX, the same 4 LNs x 100 MV objects), as fast as possible, and count CHANGED values only
(the source publishes changed values only). Both clients run in their own process: the plugin's worker
(``python -m dms_iec61850.worker``) and the raw loop (this file run with ``--raw-client``), so neither
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
CHURN_PERIOD_S = 0.004  # fixed schedule: 250 twin cycles/s x 400 values = 100,000 offered changes/s in both phases


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
    """The library's own polling loop, in its own process: readObject per LN (FC MX), changed values counted.

    Prints ``READY`` once connected and the variable specifications are read, then one ``RESULT`` JSON line.
    """
    import pyiec61850.pyiec61850 as iec

    lns = [f"IED1LD0/GGIO{g}" for g in range(1, N_LN + 1)]
    paths = [f"AnIn{i}$mag$f" for i in range(1, N_DO + 1)]

    def connect():
        con = iec.IedConnection_create()
        iec.IedConnection_setConnectTimeout(con, 1000)
        iec.IedConnection_setRequestTimeout(con, 1000)
        _, error = iec.IedConnection_connect(con, "127.0.0.1", port)
        if error != iec.IED_ERROR_OK:
            iec.IedConnection_destroy(con)
            raise ConnectionError(f"connect failed (IedClientError {error})")
        return con, [iec.IedConnection_getVariableSpecification(con, ln, iec.IEC61850_FC_MX)[0] for ln in lns]

    def close(con):
        iec.IedConnection_close(con)
        iec.IedConnection_destroy(con)

    try:
        con, specs = connect()
    except ConnectionError as exc:
        print("RESULT " + json.dumps({"error": str(exc)}), flush=True)
        return
    last: dict[tuple[int, int], float] = {}
    count = reads = errors = cycles = reconnects = 0
    lost_after: list[int] = []  # reads before each connection loss (libiec61850 sometimes drops a fresh association)
    print("READY", flush=True)
    started, cpu0 = time.monotonic(), time.process_time()
    end = started + seconds
    while time.monotonic() < end:
        for g, ln in enumerate(lns):
            value, err = iec.IedConnection_readObject(con, ln, iec.IEC61850_FC_MX)
            reads += 1
            if err != iec.IED_ERROR_OK or value is None:
                errors += 1
                if err in (iec.IED_ERROR_NOT_CONNECTED, iec.IED_ERROR_CONNECTION_LOST):
                    lost_after.append(reads)
                    close(con)
                    con, specs = connect()  # as the plugin's worker does (it waits reconnect_min_s first)
                    reconnects += 1
                    break
                continue
            spec = specs[g]
            for i, path in enumerate(paths):
                number = iec.MmsValue_toFloat(iec.MmsValue_getSubElement(value, spec, path))
                if last.get((g, i)) != number:  # count changes only, as the plugin publishes
                    last[(g, i)] = number
                    count += 1
            iec.MmsValue_delete(value)
        cycles += 1
    elapsed, cpu = time.monotonic() - started, time.process_time() - cpu0
    close(con)
    print("RESULT " + json.dumps({"count": count, "elapsed": elapsed, "reads": reads, "errors": errors,
                                  "cycles": cycles, "cpu_s": cpu,
                                  "reconnects": reconnects, "lost_after_reads": lost_after[:5]}), flush=True)


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
poll_period_s = 0.001
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

        # -- raw: the library's polling loop in its own process, same server, same churn ---------------
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
        "raw_read_errors": raw["errors"], "raw_reconnects": raw["reconnects"],
        "raw_lost_after_reads": raw["lost_after_reads"], "plugin_link_losses": plugin_link_losses,
        "plugin_polls_with_changes_per_s": round(plugin_polls),
        "raw_polls_per_s": round(raw["cycles"] / raw["elapsed"]),
        # CPU cores busy: the client process, and the benchmark process (server + twin churn, + kernel for the plugin)
        "plugin_worker_cpu": round(worker_cpu, 2),
        "raw_client_cpu": round(raw["cpu_s"] / raw["elapsed"], 2),
        "plugin_bench_cpu": round(plugin_bench_cpu, 2),
        "raw_bench_cpu": round(raw_bench_cpu, 2),
        "notes": f"MMS polling, {N_LN} LNs x {N_DO} MV objects (FC MX), one readObject per LN and cycle, changed "
                 "values counted; plugin = source + worker process (value, q, t per point, JSON lines to the "
                 "kernel); raw = readObject loop in its own process (value only); both clients in their own "
                 f"process; twin churn offered {plugin_offered:,.0f}/s (plugin phase) vs {raw_offered:,.0f}/s "
                 f"(raw phase); polls/s plugin {plugin_polls:,.0f} (with changes) vs raw {raw['cycles'] / raw['elapsed']:,.0f}; "
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
