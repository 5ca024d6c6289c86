"""Limit checks on power-flow results."""
