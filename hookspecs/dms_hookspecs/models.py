"""Network-model hooks: importers and exporters of grid models (CIM files, example networks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .markers import hookspec


@hookspec(firstresult=True)
def dms_load_model(location: str, base_dir: Path) -> Any | None:
    """Load the network model named by the deployment's ``model`` key (or ``leitstand study``).

    ``firstresult``: the first plugin that recognises ``location`` returns the model; return
    ``None`` for locations you do not handle (another file format, an unknown example name).

    :param location: a file path (``grid.xml``, ``grid.zip``) or a name an importer knows
        (``cigre_mv``); relative paths are relative to ``base_dir``.
    :param base_dir: directory of the deployment file (or the working directory).
    :return: a :class:`dms_kernel.model.NetworkModel`, or ``None``.
    :raises Exception: a file the plugin handles but cannot read (the kernel reports it
        naming the plugin).
    """


@hookspec(firstresult=True)
def dms_export_model(model: Any, path: Path, format: str) -> Path | None:
    """Write ``model`` to ``path`` in ``format`` (e.g. ``"cim100"``, ``"cgmes"``).

    ``firstresult``: the first plugin that supports ``format`` writes the file.

    :param model: the :class:`dms_kernel.model.NetworkModel`.
    :param path: output file.
    :param format: format name.
    :return: the written path, or ``None`` if the format is not supported by this plugin.
    """
