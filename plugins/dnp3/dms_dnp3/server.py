"""DNP3 outstation simulator: a twin's points behind an opendnp3 outstation (``dnp3-python``).

The outstation is the opendnp3 C++ stack through its pybind11 binding (``pydnp3``), i.e. an
implementation independent of the master (``dnp3py``), so every test of the source is an
interoperability test. opendnp3 runs its own I/O thread; twin changes are applied from the
asyncio loop (``IOutstation.Apply`` only posts to the stack), and controls received on the
opendnp3 thread are handed to the loop (``twin.operate`` is a coroutine) and answered with the
twin's verdict as the CROB / analogue output status.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from dms_hookspecs import PointKind, Setting, SettingsSchema, SimulatorServer, TwinAPI
from dms_hookspecs.pointmap import PointMapEntry, read_point_map

from .addresses import Control, Dnp3Address, Group, flags_from_quality, parse_address, value_to_wire

__all__ = ["Dnp3OutstationServer"]

log = logging.getLogger("leitstand.dnp3.outstation")


def _pydnp3():
    from pydnp3 import asiodnp3, asiopal, opendnp3, openpal  # noqa: PLC0415 - heavy C extension, load on use

    return asiodnp3, asiopal, opendnp3, openpal


def _command_handler_class():
    _, _, opendnp3, _ = _pydnp3()

    class _CommandHandler(opendnp3.ICommandHandler):
        """opendnp3 → server: Select/Operate on the opendnp3 thread."""

        def __init__(self, server: Dnp3OutstationServer) -> None:
            super().__init__()
            self._server = server

        def Start(self) -> None:  # noqa: N802
            pass

        def End(self) -> None:  # noqa: N802
            pass

        def Select(self, command, index):  # noqa: N802
            return self._server._handle_command(command, int(index), operate=False)

        def Operate(self, command, index, op_type):  # noqa: N802
            return self._server._handle_command(command, int(index), operate=True)

    return _CommandHandler


def _listening(port_hex: str) -> bool:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as handle:
                next(handle, None)
                for line in handle:
                    fields = line.split()
                    if len(fields) > 3 and fields[3] == "0A" and fields[1].endswith(":" + port_hex):
                        return True
        except OSError:
            return True  # no /proc: cannot tell, assume bound
    return False


class Dnp3OutstationServer(SimulatorServer):
    """Serves the twin's points listed in ``points_file`` as an opendnp3 outstation on ``host:port``."""

    settings_schema = SettingsSchema(
        (
            Setting("host", str, "127.0.0.1", "address to listen on (loopback)"),
            Setting("port", int, 20000, "TCP port"),
            Setting("points_file", str, None, "point map CSV shared with the dnp3 source"),
            Setting("points", list, [], "point map rows inline: [[point, address, kind, scale], ...]"),
            Setting("outstation_address", int, 10, "DNP3 link address of the outstation"),
            Setting("master_address", int, 1, "DNP3 link address of the master"),
            Setting("event_buffer", int, 1000, "events buffered per type (a master reads a full buffer in one response burst)"),
            Setting("select_timeout_s", float, 10.0, "how long a SELECT stays armed"),
            Setting("operate_timeout_s", float, 5.0, "how long a control may wait for the twin"),
        )
    )

    def __init__(self, name: str, settings: Mapping[str, Any], twin: TwinAPI) -> None:
        full = {s.name: s.default for s in self.settings_schema}
        full.update(settings)
        super().__init__(name, full, twin)
        entries = read_point_map(full["points_file"]) if full["points_file"] else [PointMapEntry(*row) for row in full["points"]]
        self._entries: list[tuple[PointMapEntry, Dnp3Address]] = []
        self._by_point: dict[str, tuple[PointMapEntry, Dnp3Address]] = {}
        self._controls: dict[tuple[Control, int], tuple[PointMapEntry, Dnp3Address]] = {}
        known = {spec.id.name for spec in twin.points()}
        seen_status: set[tuple[Group, int]] = set()
        for entry in entries:
            if not isinstance(entry.kind, PointKind):
                entry = PointMapEntry(entry.point, entry.address, PointKind(entry.kind), float(entry.scale))
            if entry.point not in known:
                raise ValueError(f"simulator {name!r}: point map names {entry.point!r}, which the twin does not serve")
            address = parse_address(entry.address)
            if address.status_key in seen_status:
                raise ValueError(f"simulator {name!r}: {address.group.value}:{address.index} reported by two points")
            seen_status.add(address.status_key)
            self._entries.append((entry, address))
            self._by_point[entry.point] = (entry, address)
            if address.control is not None:
                self._controls[(address.control, address.control_index)] = (entry, address)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._manager = None
        self._channel = None
        self._outstation = None
        self._keep: list[Any] = []  # Python objects opendnp3 holds raw pointers to
        self._unsubscribe = None
        self._lock = threading.Lock()
        self.address = (full["host"], full["port"])

    # -- configuration ----------------------------------------------------------------------

    def _sizes(self) -> dict[Group, int]:
        sizes = {group: 0 for group in Group}
        for _, address in self._entries:
            sizes[address.group] = max(sizes[address.group], address.index + 1)
        return sizes

    def _stack_config(self):
        asiodnp3, _, opendnp3, openpal = _pydnp3()
        sizes = self._sizes()
        db_sizes = opendnp3.DatabaseSizes(
            sizes[Group.BINARY], sizes[Group.DOUBLE], sizes[Group.ANALOG], sizes[Group.COUNTER],
            0, sizes[Group.BOS], sizes[Group.AOS], 0,
        )
        config = asiodnp3.OutstationStackConfig(dbSizes=db_sizes)
        config.outstation.eventBufferConfig = opendnp3.EventBufferConfig().AllTypes(sizes=int(self.settings["event_buffer"]))
        params = config.outstation.params
        params.allowUnsolicited = True
        params.selectTimeout = openpal.TimeDuration().Milliseconds(int(self.settings["select_timeout_s"] * 1000))
        params.maxTxFragSize = 4096
        config.link.LocalAddr = int(self.settings["outstation_address"])
        config.link.RemoteAddr = int(self.settings["master_address"])
        config.link.KeepAliveTimeout = openpal.TimeDuration().Max()
        db = config.dbConfig
        variations = {
            Group.BINARY: (db.binary, opendnp3.PointClass.Class1, opendnp3.StaticBinaryVariation.Group1Var2, opendnp3.EventBinaryVariation.Group2Var2),
            Group.DOUBLE: (db.doubleBinary, opendnp3.PointClass.Class1, opendnp3.StaticDoubleBinaryVariation.Group3Var2, opendnp3.EventDoubleBinaryVariation.Group4Var2),
            Group.ANALOG: (db.analog, opendnp3.PointClass.Class2, opendnp3.StaticAnalogVariation.Group30Var6, opendnp3.EventAnalogVariation.Group32Var8),
            Group.COUNTER: (db.counter, opendnp3.PointClass.Class3, opendnp3.StaticCounterVariation.Group20Var1, opendnp3.EventCounterVariation.Group22Var5),
            Group.BOS: (db.boStatus, opendnp3.PointClass.Class1, opendnp3.StaticBinaryOutputStatusVariation.Group10Var2, opendnp3.EventBinaryOutputStatusVariation.Group11Var2),
            Group.AOS: (db.aoStatus, opendnp3.PointClass.Class2, opendnp3.StaticAnalogOutputStatusVariation.Group40Var4, opendnp3.EventAnalogOutputStatusVariation.Group42Var8),
        }
        for group, (table, clazz, static, event) in variations.items():
            for index in range(sizes[group]):
                table[index].clazz = clazz
                table[index].svariation = static
                table[index].evariation = event
                if group in (Group.ANALOG, Group.AOS):
                    table[index].deadband = 0.0
        return config

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        asiodnp3, asiopal, opendnp3, openpal = _pydnp3()
        self._loop = asyncio.get_running_loop()
        host, port = self.address
        if not host.startswith("127."):
            raise ValueError(f"simulator {self.name!r}: DNP3 simulator listens on loopback only, not {host!r}")
        handler = asiodnp3.ConsoleLogger().Create()
        commands = _command_handler_class()(self)
        application = opendnp3.DefaultOutstationApplication().Create()
        listener = None  # the printing listener writes to stdout
        self._keep = [handler, commands, application, listener]
        self._manager = asiodnp3.DNP3Manager(1, handler)
        self._channel = self._manager.AddTCPServer(
            f"{self.name}-server", int(opendnp3.flags.ERR | opendnp3.flags.WARN), asiopal.ChannelRetry().Default(), host, int(port), listener
        )
        self._outstation = self._channel.AddOutstation(f"{self.name}-outstation", commands, application, self._stack_config())
        self._apply([(entry.point, *self.twin.read(entry.point)) for entry, _ in self._entries])
        self._outstation.Enable()
        self._unsubscribe = self.twin.subscribe(self._on_changes)
        await self._wait_listening(host, int(port))
        log.info("DNP3 outstation %r (address %d) listening on %s:%d with %d points", self.name,
                 self.settings["outstation_address"], host, port, len(self._entries))

    async def _wait_listening(self, host: str, port: int) -> None:
        # AddTCPServer binds on the opendnp3 thread; wait until the port is listening. A probing
        # connect would be taken as the master's session, so look at the kernel's socket table.
        wanted = f"{port:04X}"
        for _ in range(300):
            if _listening(wanted):
                return
            await asyncio.sleep(0.01)
        log.warning("DNP3 outstation %r: cannot confirm that %s:%d is listening", self.name, host, port)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        manager, self._manager = self._manager, None
        outstation, channel = self._outstation, self._channel
        self._outstation = self._channel = None
        if manager is None:
            return

        def shutdown() -> None:
            # blocking joins of the opendnp3 thread: off the loop, which a pending control may need
            # (DNP3Manager.Shutdown() crashes this binding; dropping the manager joins its thread)
            outstation.Shutdown()
            channel.Shutdown()

        await asyncio.get_running_loop().run_in_executor(None, shutdown)
        log.info("DNP3 outstation %r stopped", self.name)

    # -- twin → outstation ----------------------------------------------------------------

    def _on_changes(self, changes: Sequence[tuple[str, float, int, float]]) -> None:
        self._apply(changes)

    def _apply(self, changes: Sequence[tuple[str, float, int, float]]) -> None:
        outstation = self._outstation
        if outstation is None:
            return
        asiodnp3, _, opendnp3, _ = _pydnp3()
        builder = asiodnp3.UpdateBuilder()
        force = opendnp3.EventMode.Force
        count = 0
        for point, value, quality, stamp in changes:
            mapped = self._by_point.get(point)
            if mapped is None:
                continue
            entry, address = mapped
            group = address.group
            wire = value_to_wire(value, group, entry.kind, entry.scale)
            flags = opendnp3.Flags(flags_from_quality(quality, group))
            time = opendnp3.DNPTime(int(stamp * 1000))
            if group is Group.ANALOG:
                measurement = opendnp3.Analog(float(wire), flags, time)
            elif group is Group.BINARY:
                measurement = opendnp3.Binary(bool(wire), flags, time)
            elif group is Group.DOUBLE:
                measurement = opendnp3.DoubleBitBinary(opendnp3.DoubleBit(int(wire)), flags, time)
            elif group is Group.COUNTER:
                measurement = opendnp3.Counter(int(wire), flags, time)
            elif group is Group.BOS:
                measurement = opendnp3.BinaryOutputStatus(bool(wire), flags, time)
            else:
                measurement = opendnp3.AnalogOutputStatus(float(wire), flags, time)
            builder.Update(measurement, address.index, force)
            count += 1
        if count:
            outstation.Apply(builder.Build())

    # -- outstation → twin (opendnp3 thread) ---------------------------------------------------

    def _handle_command(self, command, index: int, *, operate: bool):
        _, _, opendnp3, _ = _pydnp3()
        status = opendnp3.CommandStatus
        try:
            if isinstance(command, opendnp3.ControlRelayOutputBlock):
                mapped = self._controls.get((Control.CROB, index))
                if mapped is None:
                    return status.NOT_SUPPORTED
                entry, _ = mapped
                code = command.functionCode
                if code in (opendnp3.ControlCode.LATCH_ON, opendnp3.ControlCode.CLOSE_PULSE_ON, opendnp3.ControlCode.PULSE_ON):
                    value = 2.0 if entry.kind is PointKind.DOUBLE else 1.0
                elif code in (opendnp3.ControlCode.LATCH_OFF, opendnp3.ControlCode.TRIP_PULSE_ON, opendnp3.ControlCode.PULSE_OFF):
                    value = 1.0 if entry.kind is PointKind.DOUBLE else 0.0
                else:
                    return status.NOT_SUPPORTED
            else:
                mapped = self._controls.get((Control.AOUT, index))
                if mapped is None:
                    return status.NOT_SUPPORTED
                entry, _ = mapped
                value = float(command.value) * entry.scale
            if not operate:
                spec = next((s for s in self.twin.points() if s.id.name == entry.point), None)
                return status.SUCCESS if spec is not None and spec.controllable else status.NOT_SUPPORTED
            loop = self._loop
            if loop is None or loop.is_closed():
                return status.HARDWARE_ERROR
            future = asyncio.run_coroutine_threadsafe(self.twin.operate(entry.point, value), loop)
            try:
                accepted, reason = future.result(timeout=float(self.settings["operate_timeout_s"]))
            except concurrent.futures.TimeoutError:
                future.cancel()
                log.warning("DNP3 outstation %r: control on %s timed out in the twin", self.name, entry.point)
                return status.TIMEOUT
            if not accepted:
                log.info("DNP3 outstation %r: twin refused %s = %g: %s", self.name, entry.point, value, reason)
                return status.BLOCKED
            return status.SUCCESS
        except Exception:  # noqa: BLE001 - never let an exception cross into the C++ stack
            log.exception("DNP3 outstation %r: control on index %d failed", self.name, index)
            return status.HARDWARE_ERROR
