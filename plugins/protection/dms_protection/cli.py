"""``leitstand protection check | plot`` — the selectivity check and time-current plots offline.

``DEPLOYMENT_OR_MODEL`` is a deployment file (``.toml``: its model and ``[settings.protection]``
store) or a model (file or example name, with ``--store URL`` or ``--devices FILE.json``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["add_commands"]


def add_commands(commands: Any) -> None:
    parser = commands.add_parser("protection", help="protection: selectivity check and time-current plots")
    sub = parser.add_subparsers(dest="protection_command", required=True)
    check = sub.add_parser("check", help="check coordination and sensitivity for the present topology")
    plot = sub.add_parser("plot", help="time-current plot (PNG/SVG) of the devices protecting a node")
    for command in (check, plot):
        command.add_argument("target", metavar="DEPLOYMENT_OR_MODEL", help="deployment file (.toml), model file or example name")
        command.add_argument("--store", help="settings store URL (default: the deployment's, else sqlite:///protection.db)")
        command.add_argument("--devices", help="JSON file with a list of device settings (instead of the store)")
        command.add_argument("--cti", type=float, default=None, help="coordination time interval in s (default 0.3)")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(handler=_check)
    plot.add_argument("--node", help="plot the chain protecting this node (mRID or name)")
    plot.add_argument("--device", action="append", default=None, help="plot this device (repeat; downstream first)")
    plot.add_argument("--output", "-o", required=True, help="image file, .png or .svg")
    plot.set_defaults(handler=_plot)


async def _load(args: Any) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    from dms_kernel import Kernel, load_deployment

    from .settings import DeviceSettings
    from .store import SettingsStore

    raw: dict[str, Any] = {}
    if args.target.endswith(".toml"):
        kernel = Kernel(load_deployment(args.target))
        await kernel.prepare()
        raw = dict(kernel.settings_for("protection"))
        model = kernel.model
        if model is None:
            raise SystemExit(f"leitstand: error: {args.target}: the deployment has no model")
    else:
        kernel = Kernel()
        model = await kernel.load_model(args.target, Path.cwd())
    if args.cti is not None:
        raw["cti_s"] = args.cti
    if args.devices:
        devices = [DeviceSettings.from_dict(d) for d in json.loads(Path(args.devices).read_text(encoding="utf-8"))]
        settings = {d.device: d for d in devices}
    else:
        store = SettingsStore(args.store or raw.get("url", "sqlite:///protection.db"), None if args.store else raw.get("schema"))
        try:
            settings = store.active()
        finally:
            store.close()
    return model, settings, raw


async def _check(args: Any) -> int:
    from .coordination import check_coordination
    from .service import options_from

    model, settings, raw = await _load(args)
    report = check_coordination(model, settings, options_from(raw))
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0 if report.ok else 1
    print(f"{len(report.devices)} devices, {len(report.pairs)} device pairs (model {getattr(model, 'name', '?')})")
    for pair in report.pairs:
        state = "ok " if pair.ok else "BAD"
        print(f"  {state} {report.names[pair.upstream]} above {report.names[pair.downstream]}: worst margin {pair.margin_s:.3f} s "
              f"at {pair.current_a:.0f} A (upstream {pair.t_upstream_s:.3f} s, downstream {pair.t_downstream_s:.3f} s)")
    for (case, fault), why in report.currents.skipped.items():
        print(f"  note: {case} {fault} short circuit not computed: {why}")
    for violation in report.violations:
        print(f"violation ({violation.rule}): {violation.message}")
    print("coordination ok" if report.ok else f"{len(report.violations)} violations")
    return 0 if report.ok else 1


async def _plot(args: Any) -> int:
    from .service import options_from, plot_devices

    model, settings, raw = await _load(args)
    if not args.node and not args.device:
        raise SystemExit("leitstand: error: give --node or --device")
    data = plot_devices(model, settings, node=args.node, devices=args.device, path=args.output, options=options_from(raw))
    print(f"wrote {args.output} ({len(data)} bytes)")
    return 0
