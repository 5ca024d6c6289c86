"""Shared real-profile data for the forecast tests (SimBench, loaded once per session)."""

from __future__ import annotations

import pandas as pd
import pytest

from dms_forecast import profiles


@pytest.fixture(scope="session")
def feeder() -> pd.DataFrame:
    """Aggregates of SimBench 1-MV-rural--0-sw (MW, 15 min, 2016, UTC)."""
    return profiles.feeder_profiles()
