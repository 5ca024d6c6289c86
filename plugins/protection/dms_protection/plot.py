"""Time-current coordination plots (log-log) of a device chain, PNG or SVG (matplotlib, Agg).

Relays: their trip curve; reclosers: fast (dashed) and slow curves; fuses: minimum melting (dashed)
and total clearing. Currents are referred to one voltage level (``reference_kv``) so that devices
on both sides of a transformer share one axis; vertical lines mark fault currents.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .settings import DeviceSettings

__all__ = ["plot_chain", "chain_for"]


def _curve(times) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    currents = np.logspace(1, 5, 400)
    values = np.array([times(i) for i in currents], dtype=float)
    keep = np.isfinite(values) & (values > 0)
    return currents[keep], values[keep]


def plot_chain(devices: Sequence[DeviceSettings], path: str | Path | None = None, *, names: Mapping[str, str] | None = None,
               scale: Mapping[str, float] | None = None, fault_currents_a: Mapping[str, float] | None = None,
               title: str = "Time-current coordination", fmt: str | None = None) -> bytes:
    """Draw the curves of ``devices`` (downstream first) and return the image bytes (also written to ``path``).

    :param scale: device mRID -> factor from the device's current to the plot's reference voltage
        (``device kV / reference kV``; default 1).
    :param fault_currents_a: label -> current (A, at the reference voltage) drawn as vertical lines.
    :param fmt: ``png`` or ``svg`` (default: from ``path``'s suffix, else png).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    names = names or {}
    scale = scale or {}
    fmt = fmt or (Path(path).suffix.lstrip(".").lower() if path else "png") or "png"
    if fmt not in ("png", "svg"):
        raise ValueError(f"plot format must be png or svg, got {fmt!r}")
    figure = Figure(figsize=(8, 6), dpi=100)
    axes = figure.add_subplot()
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    for number, device in enumerate(devices):
        colour = colours[number % len(colours)]
        factor = scale.get(device.device, 1.0)
        label = names.get(device.device, device.device)
        if device.kind == "fuse":
            curves = [(device.fuse.melting.time, "--", "melting"), (device.fuse.clearing.time, "-", "clearing")]
        elif device.kind == "recloser":
            curves = [(device.recloser.fast.time, "--", "fast"), (device.recloser.slow.time, "-", "slow")]
        else:
            curves = [(device.clearing_time, "-", "trip")]
        for times, style, what in curves:
            currents, values = _curve(lambda i, times=times: times(i * factor))
            if currents.size:
                axes.loglog(currents, values, style, color=colour, label=f"{label} ({device.kind}, {what})")
    for label, current in (fault_currents_a or {}).items():
        if math.isfinite(current):
            axes.axvline(current, color="grey", linestyle=":", linewidth=1)
            axes.annotate(label, (current, 0.012), rotation=90, fontsize=7, color="grey", va="bottom", ha="right")
    axes.set_xlim(10, 1e5)
    axes.set_ylim(0.01, 1000)
    axes.set_xlabel("current (A)")
    axes.set_ylabel("time (s)")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7, loc="upper right")
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt)
    data = buffer.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data


def chain_for(report, node: str) -> list[str]:  # noqa: ANN001
    """Devices protecting ``node`` (nearest first) from a :class:`~dms_protection.coordination.CoordinationReport`."""
    chain = [device for device, zone in report.zones.items() if node in zone]
    if not chain:
        return []
    pairs = {p.downstream: p.upstream for p in report.pairs}
    while chain[-1] in pairs:
        chain.append(pairs[chain[-1]])
    return chain
