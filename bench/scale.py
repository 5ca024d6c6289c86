"""Scale-out benchmark (issue 12): simulated RTUs → front-end processes → NATS JetStream → core.

Writes one deployment file to a temporary directory and starts, on this machine:

* ``--frontends`` front-end processes (``leitstand frontend DEPLOYMENT --group feN``), each
  running ``--sources`` ``rtu_sim`` sources (plugin ``replay``): together ``--rtus`` RTUs of
  ``--points`` points (default 200 x 500 = 100,000 points), every point changing ``--rate``
  times per second, each RTU sending one batch per ``--period`` s; values are stamped with
  their generation time (source time);
* the core in this process: a real ``Kernel`` with ``[kernel] bus = "nats"`` (one durable pull
  consumer per front-end source), with ``--historian sqlite|postgresql`` also the SQL historian
  as a sink (then every change also goes core → ``events.MeasurementBatch`` → historian).

After ``--warmup`` s it measures for ``--seconds`` s, at the core's point database (a
subscription on all points): updates/s ingested, and latency field → core = ingest time −
source time (median, p99, max; per update). The reference, in the same run: raw nats-py
(``publish_async`` with the same window → JetStream → durable pull consumer, ack per message),
the same number of messages of the same size as the core ingested in the window, as fast as it
goes — what the transport alone costs, without Leitstand (its latency is that of a backlog
published at once, not comparable with the paced Leitstand run).

    .venv/bin/python bench/scale.py [--frontends 4] [--sources 5] [--rtus 200] [--points 500]
        [--rate 1.0] [--period 0.1] [--warmup 10] [--seconds 20]
        [--historian none|sqlite|postgresql] [--nats nats://127.0.0.1:4222]

Targets (issue 12): >= 100,000 updates/s sustained on a 2-core machine, p99 <= 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import attrs
import nats
import numpy as np

import dms_nats.plugin
import dms_replay.plugin
from dms_kernel.testing import build_kernel

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TARGET_RATE = 100_000
TARGET_P99_S = 1.0


@attrs.frozen
class Result:
    """One row of the table."""

    name: str
    updates_per_s: float
    messages_per_s: float
    median_s: float | None
    p99_s: float | None
    max_s: float | None


class Recorder:
    """Point-database subscription of the core: counts updates and keeps every update's latency
    (ingest time − source time)."""

    def __init__(self, kernel) -> None:  # noqa: ANN001 - a started Kernel
        self.kernel = kernel
        self.recording = False
        self.updates = 0
        self.latencies: list[np.ndarray] = []
        kernel.points.subscribe(None, self._changed)

    def _changed(self, changed: np.ndarray) -> None:
        if not self.recording:
            return
        self.updates += changed.size
        # the column itself: read() would build a Measurement object per point
        self.latencies.append(time.time() - self.kernel.points._source_time[changed])

    def percentiles(self) -> tuple[float, float, float]:
        latency = np.concatenate(self.latencies)
        median, p99 = np.percentile(latency, (50, 99))
        return float(median), float(p99), float(latency.max())


def deployment(args: argparse.Namespace, tag: str, workdir: Path) -> str:
    per_source, rest = divmod(args.rtus, args.frontends * args.sources)
    if per_source == 0 or rest:
        raise SystemExit(f"--rtus {args.rtus} must be a multiple of --frontends x --sources = {args.frontends * args.sources}")
    lines = [
        f'[deployment]\nname = "scale-{tag}"\n[kernel]\nbus = "nats"\n',
        '[plugins]\nenable = ["replay", "nats", "sqlhistorian"]\n',
        f'[settings.nats]\nurl = "{args.nats}"\nstream_prefix = "SCALE_{tag}"\nretention_s = 3600\n',
    ]
    seed = 0
    for f in range(args.frontends):
        for s in range(args.sources):
            seed += 1
            lines.append(
                f'[[sources]]\nname = "fe{f}s{s}"\ntype = "rtu_sim"\ngroup = "fe{f}"\n'
                f"settings = {{ rtus = {per_source}, points = {args.points}, rate = {args.rate}, "
                f"period_s = {args.period}, seed = {seed} }}\n"
            )
    if args.historian != "none":
        url = f"sqlite:///{workdir / 'historian.db'}" if args.historian == "sqlite" else args.postgres
        schema = f', schema = "scale_{tag.lower()}"' if args.historian == "postgresql" else ""
        lines.append(
            f'[[sinks]]\nname = "historian"\ntype = "sql"\nqueue_size = 4096\n'
            f'settings = {{ url = "{url}"{schema}, spool_dir = "{workdir / "spool"}", maintenance_interval_s = 0.0 }}\n'
        )
    return "\n".join(lines)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine, total stall seconds of CPU pressure "some")."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
    try:
        some = Path("/proc/pressure/cpu").read_text().split("\n", 1)[0]
        stall = int(some.rsplit("total=", 1)[1]) / 1e6
    except (OSError, IndexError, ValueError):
        stall = 0.0
    return busy, stall


def pids_named(name: str) -> list[int]:
    """Processes whose command name is ``name`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def nats_server_pid() -> int | None:
    return next(iter(pids_named("nats-server")), None)


async def leitstand_run(args: argparse.Namespace, tag: str, workdir: Path) -> tuple[Result, dict[str, float], dict[str, float]]:
    path = workdir / "deployment.toml"
    path.write_text(deployment(args, tag, workdir))
    plugins: list[object] = [dms_replay.plugin, ("nats", dms_nats.plugin)]
    if args.historian != "none":
        import dms_sqlhistorian.plugin

        plugins.append(dms_sqlhistorian.plugin)
    kernel = build_kernel(*plugins, deployment=path.read_text())
    frontends: list[subprocess.Popen] = []
    extra: dict[str, float] = {}
    try:
        print(f"core: declaring {args.rtus * args.points:,} points; starting {args.frontends} front-ends ...", flush=True)
        await kernel.start()
        recorder = Recorder(kernel)
        for f in range(args.frontends):
            log = open(workdir / f"fe{f}.log", "w")
            frontends.append(subprocess.Popen(
                [sys.executable, "-m", "dms_kernel", "frontend", str(path), "--group", f"fe{f}", "--instance", f"fe{f}"],
                stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ),
            ))
            log.close()
        remotes = list(kernel.sources.values())
        deadline = time.monotonic() + 180
        while not all(remote.counters["ingested"] for remote in remotes):
            if time.monotonic() > deadline or any(p.poll() is not None for p in frontends):
                raise SystemExit(f"front-ends did not start (logs in {workdir})")
            await asyncio.sleep(0.2)
        print(f"all front-ends active; warm-up {args.warmup:g} s, then measuring {args.seconds:g} s ...", flush=True)
        await asyncio.sleep(args.warmup)
        pids = {"core": os.getpid(), "front-ends": 0, "nats-server": nats_server_pid() or 0}
        postgres = pids_named("postgres") if args.historian == "postgresql" else []
        cpu_before = {f.pid: cpu_seconds(f.pid) for f in frontends} | {pid: cpu_seconds(pid) for pid in [*pids.values(), *postgres] if pid}
        historian = kernel.sinks.get("historian")
        rows_before = _rows(historian)
        machine_before = machine_cpu()
        batches_before = sum(remote.counters["ingested"] for remote in remotes)
        recorder.recording = True
        started = time.perf_counter()
        await asyncio.sleep(args.seconds)
        recorder.recording = False
        elapsed = time.perf_counter() - started
        machine_after = machine_cpu()
        rows_after = _rows(historian)
        batches = sum(remote.counters["ingested"] for remote in remotes) - batches_before
        cpu = {
            "core": cpu_seconds(pids["core"]) - cpu_before[pids["core"]],
            "front-ends": sum(cpu_seconds(f.pid) - cpu_before[f.pid] for f in frontends),
            "nats-server": cpu_seconds(pids["nats-server"]) - cpu_before.get(pids["nats-server"], 0.0),
        }
        if postgres:  # the server's processes alive at the start of the window (backends, WAL writer, ...)
            cpu["postgres"] = sum(cpu_seconds(pid) - cpu_before[pid] for pid in postgres)
        cores = {name: seconds / elapsed for name, seconds in cpu.items()}
        cores["other processes"] = max(0.0, (machine_after[0] - machine_before[0]) / elapsed - sum(cores.values()))
        extra["CPU pressure (% of time a task waited for a core)"] = 100 * (machine_after[1] - machine_before[1]) / elapsed
        if historian is not None:
            extra["historian rows/s"] = (rows_after - rows_before) / elapsed
        extra["dropped (front-end queues)"] = float(sum(_dropped(workdir / f"fe{f}.log") for f in range(args.frontends)))
        extra["reordered"] = float(sum(remote.counters["reordered"] for remote in remotes))
        median, p99, worst = recorder.percentiles()
        extra["message bytes"] = float(await _message_size(args, tag))
        result = Result("Leitstand (front-ends → NATS → core)", recorder.updates / elapsed, batches / elapsed, median, p99, worst)
        return result, cores, extra
    finally:
        for process in frontends:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in frontends:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        await kernel.stop()


def _rows(historian) -> int:  # noqa: ANN001 - SqlSink or None
    if historian is None:
        return 0
    from dms_sqlhistorian import query

    return query.count(historian.engine, schema=historian.settings["schema"])


def _dropped(log: Path) -> int:
    text = log.read_text() if log.exists() else ""
    return text.count("outbound queue full")


async def _message_size(args: argparse.Namespace, tag: str) -> int:
    """Mean size of the stored measurement messages (stream bytes / messages)."""
    client = await nats.connect(args.nats)
    try:
        info = await client.jetstream().stream_info(f"SCALE_{tag}_MEAS")
        return int(info.state.bytes / max(info.state.messages, 1))
    finally:
        await client.close()


async def reference(args: argparse.Namespace, tag: str, messages: int, size: int, per_message: float) -> Result:
    """Raw nats-py: ``messages`` messages of ``size`` bytes published with ``publish_async``
    (window 256) and pulled by a durable consumer (batches of 256, ack per message)."""
    client = await nats.connect(args.nats)
    js = client.jetstream()
    stream, subject = f"SCALE_{tag}_REF", f"scale.{tag}.ref"
    await js.add_stream(name=stream, subjects=[subject])
    filler = bytes(max(size - 8, 0))
    latencies: list[float] = []
    try:
        pull = await js.pull_subscribe(subject, durable="ref", stream=stream)

        async def publish() -> None:
            window: list[asyncio.Future] = []
            for n in range(messages):
                payload = np.float64(time.time()).tobytes() + filler
                window.append(await js.publish_async(subject, payload, headers={"Nats-Msg-Id": f"r{n}"}))
                if len(window) >= 256:
                    await window.pop(0)
            await asyncio.gather(*window)

        async def consume() -> None:
            received = 0
            while received < messages:
                try:
                    batch = await pull.fetch(batch=256, timeout=2.0)
                except (TimeoutError, nats.errors.TimeoutError):
                    continue
                now = time.time()
                for message in batch:
                    latencies.append(now - np.frombuffer(message.data[:8], np.float64)[0])
                    await message.ack()
                received += len(batch)

        started = time.perf_counter()
        await asyncio.gather(publish(), consume())
        elapsed = time.perf_counter() - started
    finally:
        await js.delete_stream(stream)
        await client.close()
    ordered = sorted(latencies)
    return Result(
        "reference: raw nats-py publish_async → pull", messages * per_message / elapsed, messages / elapsed,
        statistics.median(ordered), ordered[int(0.99 * (len(ordered) - 1))], ordered[-1],
    )


async def cleanup(args: argparse.Namespace, tag: str) -> None:
    client = await nats.connect(args.nats)
    js = client.jetstream()
    for stream in (f"SCALE_{tag}_MEAS", f"SCALE_{tag}_EVENTS", f"KV_SCALE_{tag}_LEASES", f"KV_SCALE_{tag}_NAMES"):
        try:
            await js.delete_stream(stream)
        except Exception:  # noqa: BLE001 - not created
            pass
    await client.close()
    if args.historian == "postgresql":
        from sqlalchemy import create_engine, text

        engine = create_engine(args.postgres)
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "scale_{tag.lower()}" CASCADE'))
        engine.dispose()


def table(rows: list[Result], cores: dict[str, float], extra: dict[str, float], args: argparse.Namespace) -> str:
    def seconds(value: float | None) -> str:
        return "—" if value is None else f"{value * 1000:,.0f} ms"

    lines = [
        "| path | updates/s | messages/s | latency median | p99 | max |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.name} | {row.updates_per_s:,.0f} | {row.messages_per_s:,.0f} | {seconds(row.median_s)} | "
            f"{seconds(row.p99_s)} | {seconds(row.max_s)} |"
        )
    leitstand = rows[0]
    offered = args.rtus * args.points * args.rate
    met_rate = leitstand.updates_per_s >= 0.99 * TARGET_RATE  # 1 %: batches straddling the window edges
    met_p99 = leitstand.p99_s is not None and leitstand.p99_s <= TARGET_P99_S
    lines += [
        "",
        f"offered {offered:,.0f} updates/s ({args.rtus} RTUs x {args.points} points, {args.rate:g}/s each, "
        f"{args.frontends} front-ends x {args.sources} sources, RTU cycle {args.period:g} s)",
        "CPU (cores) during the window: " + ", ".join(f"{name} {value:.2f}" for name, value in cores.items()),
        ", ".join(f"{name}: {value:,.0f}" for name, value in extra.items()),
        f"target >= {TARGET_RATE:,} updates/s: {'met' if met_rate else 'NOT met'}; "
        f"p99 <= {TARGET_P99_S:g} s: {'met' if met_p99 else 'NOT met'}",
    ]
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frontends", type=int, default=4)
    parser.add_argument("--sources", type=int, default=5, help="rtu_sim sources per front-end")
    parser.add_argument("--rtus", type=int, default=200)
    parser.add_argument("--points", type=int, default=500, help="points per RTU")
    parser.add_argument("--rate", type=float, default=1.0, help="changes per point per second")
    parser.add_argument("--period", type=float, default=0.1, help="RTU transmission cycle in seconds")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--historian", choices=("none", "sqlite", "postgresql"), default="none")
    parser.add_argument("--postgres", default=POSTGRES_URL)
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:8].upper()
    with tempfile.TemporaryDirectory(prefix="leitstand-scale-") as tmp:
        try:
            result, cores, extra = await leitstand_run(args, tag, Path(tmp))
        finally:
            await cleanup(args, tag)
    per_message = result.updates_per_s / max(result.messages_per_s, 1e-9)
    print(f"reference: {int(result.messages_per_s * args.seconds):,} messages of {extra['message bytes']:,.0f} bytes ...", flush=True)
    ref = await reference(args, tag, int(result.messages_per_s * args.seconds), int(extra["message bytes"]), per_message)
    print()
    print(table([result, ref], cores, extra, args))


if __name__ == "__main__":
    asyncio.run(main())
