"""Leitstand power-flow solver plugin using power-grid-model (symmetric and asymmetric).

``dms_pgm.convert.to_pgm(model)`` converts a :class:`dms_kernel.model.NetworkModel` once into a
power-grid-model input dataset and a ``PowerGridModel``; ``PgmNetwork.update(model)`` pushes the
values that change at run time (loads, switch states, tap positions, source voltage) into it;
``dms_pgm.prepared`` keeps the update and output datasets of these repeated calls between cycles.
"""

from .convert import PgmNetwork, UnsupportedNetworkError, to_pgm

__all__ = ["PgmNetwork", "UnsupportedNetworkError", "to_pgm"]
