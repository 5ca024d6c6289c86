"""Leitstand solver plugin: unbalanced power flow of multi-phase feeders with OpenDSS (dss-python)."""

from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"
IEEE13_CIM = DATA_DIR / "ieee13.xml"
IEEE13_PUBLISHED = DATA_DIR / "ieee13_published.csv"

__all__ = ["DATA_DIR", "IEEE13_CIM", "IEEE13_PUBLISHED"]
