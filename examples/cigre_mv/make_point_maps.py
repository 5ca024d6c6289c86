"""Write the point maps of the CIGRE MV demo: which SCADA point is served by which protocol.

The substation RTU speaks IEC 60870-5-104 (voltage, transformer P/Q, feeder breakers); a
bay IED speaks IEC 61850 (feeder load-break switches and the wind park); a feeder RTU speaks
DNP3 (the normally open tie switches S1-S3); the PV inverters are read over OPC UA; three
customers' smart meters over DLMS/COSEM. Point names are those of
``dms_kernel.model.scada.add_scada_measurements(model, meters=True)``.

Run: .venv/bin/python examples/cigre_mv/make_point_maps.py
"""

from pathlib import Path

from dms_simulator.pointmap import PointMapEntry, write_point_map

from dms_hookspecs import PointKind

HERE = Path(__file__).parent
A, D = PointKind.ANALOG, PointKind.DOUBLE

MAPS = {
    "iec104.csv": [
        PointMapEntry("external_grid_0/U", "1:1001", A),
        PointMapEntry("Trafo_0-1/P", "1:1011", A),
        PointMapEntry("Trafo_0-1/Q", "1:1012", A),
        PointMapEntry("Trafo_0-12/P", "1:1021", A),
        PointMapEntry("Trafo_0-12/Q", "1:1022", A),
        PointMapEntry("switch_6/Pos", "1:2001", D),
        PointMapEntry("switch_7/Pos", "1:2002", D),
    ],
    "iec61850.csv": [
        PointMapEntry("switch_0/Pos", "IED1LD0/CSWI1.Pos", D),
        PointMapEntry("switch_3/Pos", "IED1LD0/CSWI2.Pos", D),
        PointMapEntry("switch_5/Pos", "IED1LD0/CSWI3.Pos", D),
        PointMapEntry("WKA_7/P", "IED1LD0/MMXU1.TotW.mag.f", A),
    ],
    "dnp3.csv": [
        PointMapEntry("S1/Pos", "crob:0@double:0", D),
        PointMapEntry("S2/Pos", "crob:1@double:1", D),
        PointMapEntry("S3/Pos", "crob:2@double:2", D),
    ],
    "opcua.csv": [PointMapEntry(f"PV_{n}/P", f"ns=2;s=PV_{n}/P", A) for n in (3, 4, 5, 6, 8, 9, 10, 11)],
}
METERS = {"meter_r11.csv": "Load_R11/P", "meter_r12.csv": "Load_R12/P", "meter_ci7.csv": "Load_CI7/P"}


def main() -> None:
    for name, entries in MAPS.items():
        write_point_map(HERE / name, entries)
    for name, point in METERS.items():  # active power import register, W on the wire, MW in Leitstand
        write_point_map(HERE / name, [PointMapEntry(point, "1.0.1.7.0.255:2", A, 1e-6)])
    print(f"wrote {len(MAPS) + len(METERS)} point maps to {HERE}")


if __name__ == "__main__":
    main()
