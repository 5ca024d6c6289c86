import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # nats_support (shared helpers), with --import-mode=importlib

from nats_support import nats_env  # noqa: E402, F401 - fixture
