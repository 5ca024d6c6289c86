"""Topological observability: energised islands and their voltage references.

A bus-branch graph (in-service branches and closed switches) is split into islands
(``scipy.sparse.csgraph.connected_components``). An island with a source (slack) is energised;
its state is observable only with at least one voltage-magnitude measurement in it (every bus
has P/Q injection information: measured, pseudo-measured or zero injection). Islands without
a source are de-energised and not estimated.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["islands", "unobservable_islands", "describe"]


def islands(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Island label per bus for the undirected edges ``a[k] - b[k]``."""
    if n == 0:
        return np.zeros(0, dtype=int)
    graph = coo_matrix((np.ones(len(a)), (np.asarray(a, int), np.asarray(b, int))), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def unobservable_islands(labels: np.ndarray, source_buses: np.ndarray, voltage_buses: np.ndarray) -> list[np.ndarray]:
    """Bus positions of each energised island without a voltage measurement."""
    energised = np.unique(labels[np.asarray(source_buses, int)]) if len(source_buses) else np.zeros(0, int)
    referenced = set(labels[np.asarray(voltage_buses, int)].tolist()) if len(voltage_buses) else set()
    return [np.flatnonzero(labels == island) for island in energised.tolist() if island not in referenced]


def describe(names: Sequence[str], limit: int = 12) -> str:
    """``a, b, c … (N buses)``."""
    shown = ", ".join(names[:limit])
    more = f" … ({len(names)} buses)" if len(names) > limit else f" ({len(names)} bus{'es' if len(names) != 1 else ''})"
    return shown + more
