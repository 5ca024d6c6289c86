"""Leitstand DNP3 plugin: a master source (dnp3py) and an outstation simulator (opendnp3)."""
