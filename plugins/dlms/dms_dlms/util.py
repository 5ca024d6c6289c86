"""Small helpers shared by the DLMS source and server."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dms_hookspecs import SettingsSchema

__all__ = ["with_defaults"]


def with_defaults(schema: SettingsSchema, settings: Mapping[str, Any], what: str) -> dict[str, Any]:
    """``settings`` completed with the schema's defaults (the simulator does not validate for us).

    :raises ValueError: unknown or missing key.
    """
    known = {setting.name: setting for setting in schema}
    unknown = sorted(set(settings) - set(known))
    if unknown and not schema.allow_extra:
        raise ValueError(f"{what}: unknown setting(s) {unknown}")
    result = dict(settings)
    for name, setting in known.items():
        if name not in result:
            if setting.required:
                raise ValueError(f"{what}: missing setting {name!r}")
            result[name] = setting.default
    return result
