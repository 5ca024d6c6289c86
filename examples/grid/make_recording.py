"""Write recording.csv: one day of SCADA values for the CIGRE MV example, 15-minute steps.

Transformer P follows a standard household/commercial day profile, PV a clear-sky bell, the
substation voltage a small daily swing; feeder breaker ``switch 6`` trips at 14:00 and is
closed again at 15:00. Times are seconds of the day (replay with speed = 900 for one day in
96 s).   Run: python examples/grid/make_recording.py
"""

import csv
import math
from pathlib import Path

PV = [3, 4, 5, 6, 8, 9, 10, 11]
PV_PEAK_MW = {3: 0.02, 4: 0.02, 5: 0.03, 6: 0.03, 8: 0.03, 9: 0.03, 10: 0.04, 11: 0.01}


def load_factor(hour: float) -> float:
    """Day profile (0..1): night valley, morning and evening peaks."""
    return 0.45 + 0.25 * math.exp(-((hour - 8) / 2.0) ** 2) + 0.35 * math.exp(-((hour - 19) / 2.5) ** 2) + 0.15 * math.sin(math.pi * hour / 24)


def pv_factor(hour: float) -> float:
    return max(0.0, math.sin(math.pi * (hour - 6) / 14)) if 6 <= hour <= 20 else 0.0


def main() -> None:
    rows = []
    for step in range(96):
        t = step * 900.0
        hour = t / 3600
        head = 22.0 * load_factor(hour)
        rows.append((t, "Trafo_0-1/P", round(0.55 * head, 4)))
        rows.append((t, "Trafo_0-12/P", round(0.45 * head, 4)))
        rows.append((t, "Trafo_0-1/Q", round(0.55 * head * 0.3, 4)))
        rows.append((t, "Trafo_0-12/Q", round(0.45 * head * 0.3, 4)))
        rows.append((t, "external_grid_0/U", round(110.0 * (1.0 + 0.01 * math.sin(2 * math.pi * (hour - 4) / 24)), 3)))
        for n in PV:
            rows.append((t, f"PV_{n}/P", round(PV_PEAK_MW[n] * pv_factor(hour), 5)))
        rows.append((t, "switch 6/Pos".replace(" ", "_"), 1 if 14 <= hour < 15 else 2))
    path = Path(__file__).with_name("recording.csv")
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["time", "point", "value"])
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {path}")


if __name__ == "__main__":
    main()
