"""The settings store: versioned protection settings per device and setting group, persisted with
SQLAlchemy (SQLite by default, PostgreSQL), every change audited.

Tables (created if missing, ``prot_`` prefix so that they can share a database with the
historian and the work orders):

* ``prot_settings``: one row per saved version — device, group, version (1, 2, … per device and
  group), the settings as JSON, author, time, reason;
* ``prot_active_group``: the active setting group per device, who switched it, when and why.

Every save and group change emits an :class:`~dms_hookspecs.AuditEntry` (``protection.settings.save``,
``protection.group.activate``) through the ``emit`` callable.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    Engine,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    func,
    make_url,
    select,
)
from sqlalchemy.pool import StaticPool
from sqlalchemy.schema import CreateSchema

from dms_hookspecs import AuditEntry, Event

from .settings import DeviceSettings

__all__ = ["SettingsStore", "SettingsVersion", "UnknownSettings", "metadata"]

metadata = MetaData()

settings_table = Table(
    "prot_settings",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("device", Text, nullable=False),
    Column("sg", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("data", Text, nullable=False),
    Column("author", Text, nullable=False),
    Column("created", Double, nullable=False),
    Column("reason", Text, nullable=False),
    UniqueConstraint("device", "sg", "version", name="uq_prot_settings_version"),
)

active_table = Table(
    "prot_active_group",
    metadata,
    Column("device", Text, primary_key=True),
    Column("sg", Integer, nullable=False),
    Column("author", Text, nullable=False),
    Column("changed", Double, nullable=False),
    Column("reason", Text, nullable=False),
)


class UnknownSettings(LookupError):
    """No settings stored for the device / group / version asked for."""


@attrs.frozen
class SettingsVersion:
    """One stored version: the settings and who saved them, when and why."""

    settings: DeviceSettings
    group: int
    version: int
    author: str
    created: float
    reason: str


class SettingsStore:
    """Versioned settings with setting groups.

    :param url: SQLAlchemy URL (``sqlite:///protection.db``, ``postgresql+psycopg://…``).
    :param schema: database schema (PostgreSQL), created if missing.
    :param emit: receives the audit entries (``kernel.emit`` in a running kernel).
    :param groups: number of setting groups per device (1..n).
    """

    def __init__(self, url: str = "sqlite:///protection.db", schema: str | None = None, *,
                 emit: Callable[[Event], None] | None = None, groups: int = 2, clock: Callable[[], float] = time.time) -> None:
        if groups < 1:
            raise ValueError(f"groups must be at least 1, got {groups}")
        self.groups = groups
        self.emit = emit or (lambda event: None)
        self.clock = clock
        self._lock = threading.Lock()
        self.engine = _engine(url, schema)
        with self.engine.begin() as connection:
            if schema:
                connection.execute(CreateSchema(schema, if_not_exists=True))
            metadata.create_all(connection, checkfirst=True)

    def close(self) -> None:
        self.engine.dispose()

    def _check_group(self, group: int) -> None:
        if not 1 <= group <= self.groups:
            raise ValueError(f"setting group {group} does not exist (groups 1..{self.groups})")

    # -- writing ---------------------------------------------------------------------------------

    def save(self, settings: DeviceSettings, *, group: int = 1, user: str, reason: str) -> SettingsVersion:
        """Store ``settings`` as the next version of its device in ``group``; audited.

        :raises ValueError: no reason given, or a group outside 1..groups.
        """
        self._check_group(group)
        if not reason.strip():
            raise ValueError("a settings change needs a reason (why)")
        when = self.clock()
        with self._lock, self.engine.begin() as connection:
            current = connection.execute(
                select(func.max(settings_table.c.version)).where(settings_table.c.device == settings.device, settings_table.c.sg == group)
            ).scalar()
            version = (current or 0) + 1
            connection.execute(settings_table.insert().values(
                device=settings.device, sg=group, version=version, data=json.dumps(settings.to_dict(), sort_keys=True),
                author=user, created=when, reason=reason,
            ))
        self.emit(AuditEntry(actor=user, action="protection.settings.save", subject=settings.device,
                             detail=f"group {group} version {version}: {reason}", time=when))
        return SettingsVersion(settings, group, version, user, when, reason)

    def activate(self, device: str, group: int, *, user: str, reason: str) -> None:
        """Make ``group`` the active setting group of ``device``; audited."""
        self._check_group(group)
        when = self.clock()
        with self._lock, self.engine.begin() as connection:
            exists = connection.execute(select(active_table.c.device).where(active_table.c.device == device)).first()
            values = {"sg": group, "author": user, "changed": when, "reason": reason}
            if exists:
                connection.execute(active_table.update().where(active_table.c.device == device).values(**values))
            else:
                connection.execute(active_table.insert().values(device=device, **values))
        self.emit(AuditEntry(actor=user, action="protection.group.activate", subject=device, detail=f"group {group}: {reason}", time=when))

    # -- reading ---------------------------------------------------------------------------------

    def active_group(self, device: str) -> int:
        with self.engine.connect() as connection:
            group = connection.execute(select(active_table.c.sg).where(active_table.c.device == device)).scalar()
        return int(group) if group is not None else 1

    def get(self, device: str, group: int | None = None, version: int | None = None) -> SettingsVersion:
        """A stored version: the latest of the active group unless ``group``/``version`` are given.

        :raises UnknownSettings: nothing stored for that device, group or version.
        """
        group = self.active_group(device) if group is None else group
        query = select(settings_table).where(settings_table.c.device == device, settings_table.c.sg == group)
        query = query.where(settings_table.c.version == version) if version is not None else query.order_by(settings_table.c.version.desc())
        with self.engine.connect() as connection:
            row = connection.execute(query.limit(1)).first()
        if row is None:
            what = f"version {version} of " if version is not None else ""
            raise UnknownSettings(f"no settings stored for {what}device {device!r} in group {group}")
        return _version(row)

    def history(self, device: str, group: int | None = None) -> list[SettingsVersion]:
        """Every stored version of a device (of one group, if given), oldest first."""
        query = select(settings_table).where(settings_table.c.device == device)
        if group is not None:
            query = query.where(settings_table.c.sg == group)
        with self.engine.connect() as connection:
            return [_version(row) for row in connection.execute(query.order_by(settings_table.c.sg, settings_table.c.version))]

    def devices(self) -> list[str]:
        with self.engine.connect() as connection:
            return sorted(r[0] for r in connection.execute(select(settings_table.c.device).distinct()))

    def active(self) -> dict[str, DeviceSettings]:
        """The latest settings of the active group of every device that has some."""
        found = {}
        for device in self.devices():
            try:
                found[device] = self.get(device).settings
            except UnknownSettings:
                continue
        return found


def _version(row: Any) -> SettingsVersion:
    return SettingsVersion(DeviceSettings.from_dict(json.loads(row.data)), int(row.sg), int(row.version), row.author, float(row.created), row.reason)


def _engine(url: str, schema: str | None) -> Engine:
    parsed = make_url(url)
    options: dict[str, Any] = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        if schema:
            raise ValueError("a database schema is not supported with SQLite; use a separate database file")
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        else:
            options.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    engine = create_engine(parsed, **options)
    if schema:
        engine = engine.execution_options(schema_translate_map={None: schema})
    return engine
