"""NATS JetStream bus and SCADA front-ends for Leitstand (see docs/scale-out.md)."""

from .bus import NatsBus
from .frontend import Frontend
from .lease import Lease, LeaseLost
from .remote import RemoteSource
from .schema import SCHEMA_VERSION, SchemaError, Subjects

__all__ = ["NatsBus", "Frontend", "Lease", "LeaseLost", "RemoteSource", "SCHEMA_VERSION", "SchemaError", "Subjects"]
