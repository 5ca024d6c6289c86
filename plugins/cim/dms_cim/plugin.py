"""Entry point of the ``cim`` plugin: loads ``.xml``/``.rdf``/``.zip`` CIM models, exports cim100/cgmes."""

from __future__ import annotations

from pathlib import Path

from dms_hookspecs import hookimpl

from .reader import read_cim
from .writer import PROFILES, write_cim

SUFFIXES = (".xml", ".rdf", ".zip")


@hookimpl
def dms_load_model(location, base_dir):
    path = Path(location)
    if not path.is_absolute():
        path = Path(base_dir) / path
    if path.suffix.lower() not in SUFFIXES or not path.is_file():
        return None
    return read_cim(path)


@hookimpl
def dms_export_model(model, path, format):
    if format not in PROFILES:
        return None
    return write_cim(model, path, profile=format)
