"""Leitstand runtime: plugin host, deployment config, point database, bus, scheduler, command path."""

__version__ = "0.1.0"

from .config import Deployment, load_deployment, parse_deployment  # noqa: E402
from .errors import ConfigError, LeitstandError, PluginError, StudyError, UnknownPointError  # noqa: E402
from .host import PluginHost  # noqa: E402
from .kernel import Kernel  # noqa: E402
from .points import PointDatabase  # noqa: E402

__all__ = [
    "__version__",
    "Kernel",
    "PluginHost",
    "PointDatabase",
    "Deployment",
    "load_deployment",
    "parse_deployment",
    "LeitstandError",
    "ConfigError",
    "PluginError",
    "StudyError",
    "UnknownPointError",
]
