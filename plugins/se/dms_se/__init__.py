"""Leitstand state estimation: WLS (pandapower) and power-grid-model estimators with bad-data processing."""
