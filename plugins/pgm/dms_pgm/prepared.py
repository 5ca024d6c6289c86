"""Repeated power-grid-model calls with their datasets set up once.

``PowerGridModel.update`` and ``calculate_*`` rebuild, on every call, what a cyclic DMS study
asks for unchanged every time: the options object, the output arrays and the C datasets that
describe the update and output buffers to the core (some 35 C-API calls through power-grid-model's
Python layer). On a 100-bus network that layer costs ~150 µs of a ~250 µs update + Newton-Raphson
— more than the calculation itself. Here it is done once:

* :class:`PreparedCalculation`: one calculation (type, symmetry, method, tolerance, iterations,
  output request) on one ``PowerGridModel``; the options and the output buffers are made once and
  every :meth:`~PreparedCalculation.run` writes into the same output arrays.
* :class:`UpdatePusher`: ``update_model`` with the C dataset of an update made once per set of
  update arrays; callers keep their update arrays and change their contents in place
  (:class:`UpdateArrays` hands out such arrays).

Both call the same power-grid-model core functions as the public API, with the same datasets,
so the results are identical bit for bit (``tests/test_prepared.py`` compares them). They use
power-grid-model's internal ``_core`` modules (tested with 1.12); if those cannot be imported,
:data:`AVAILABLE` is False and both fall back to the public API.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from power_grid_model import CalculationMethod, ComponentType, DatasetType, PowerGridModel, initialize_array

try:  # power-grid-model's internals: the pieces its public update/calculate use
    from power_grid_model._core.data_handling import get_output_type, prepare_output_view, prepare_update_view
    from power_grid_model._core.enum import CalculationType
    from power_grid_model._core.error_handling import assert_no_error
    from power_grid_model._core.power_grid_core import ConstDatasetPtr, get_power_grid_core
except ImportError:  # pragma: no cover - a power-grid-model release that moved them
    AVAILABLE = False
else:
    AVAILABLE = True

__all__ = ["AVAILABLE", "PreparedCalculation", "UpdateArrays", "UpdatePusher"]

Output = dict[ComponentType, Any]


class PreparedCalculation:
    """One power flow or state estimation on ``model``, repeated with :meth:`run`.

    :param model: the power-grid-model (its structure must not change; updates are fine).
    :param state_estimation: a state estimation, else a power flow.
    :param output_component_types: as for ``calculate_power_flow``.

    The output of :meth:`run` is the same dict of arrays every time, overwritten by the next
    run: copy what must outlive the cycle. Not thread-safe: one run at a time per instance.
    """

    def __init__(
        self,
        model: PowerGridModel,
        *,
        state_estimation: bool,
        symmetric: bool,
        calculation_method: CalculationMethod,
        error_tolerance: float,
        max_iterations: int,
        output_component_types: Any,
    ) -> None:
        self.model = model
        self._kwargs = dict(
            symmetric=symmetric, calculation_method=calculation_method, error_tolerance=error_tolerance,
            max_iterations=max_iterations, output_component_types=output_component_types,
        )
        self._public = model.calculate_state_estimation if state_estimation else model.calculate_power_flow
        if not AVAILABLE:
            return
        kind = CalculationType.state_estimation if state_estimation else CalculationType.power_flow
        self._options = model._options(  # noqa: SLF001 - the options object the public call makes
            calculation_type=kind, symmetric=symmetric, error_tolerance=error_tolerance, max_iterations=max_iterations,
            calculation_method=calculation_method, threading=-1,
        )
        self.output: Output = model._construct_output(  # noqa: SLF001
            output_component_types=output_component_types, calculation_type=kind, symmetric=symmetric, is_batch=False, batch_size=1,
        )
        self._view = prepare_output_view(output_data=self.output, output_type=get_output_type(calculation_type=kind, symmetric=symmetric))
        self._output_ptr = self._view.get_dataset_ptr()
        self._no_update = ConstDatasetPtr()
        self._core = get_power_grid_core()

    def run(self) -> Output:
        """Calculate; the output arrays (the same objects on every run).

        :raises PowerGridError: as the public call (not converged, singular, ...).
        """
        if not AVAILABLE:  # pragma: no cover
            return self._public(**self._kwargs)
        self._core.calculate(self.model._model, self._options.opt, self._output_ptr, self._no_update)  # noqa: SLF001
        assert_no_error()
        return self.output


class UpdatePusher:
    """``model.update(update_data=data)`` with the C dataset of ``data`` made once per set of arrays.

    The dataset is cached by the identity of the update arrays (kept alive by the cache), so a
    caller that reuses its arrays and changes their contents in place pays for the dataset once.
    Fresh arrays on every call still work (a new dataset each time, the oldest dropped).
    """

    MAX_DATASETS = 16

    def __init__(self) -> None:
        self._datasets: dict[tuple[tuple[ComponentType, int], ...], tuple[Any, Any, Mapping[ComponentType, np.ndarray]]] = {}

    def push(self, model: PowerGridModel, data: Mapping[ComponentType, np.ndarray]) -> None:
        """Apply ``data`` (component -> update array) to ``model`` permanently.

        :raises PowerGridError: as ``PowerGridModel.update`` (the model is then invalid).
        """
        if not data:
            return
        if not AVAILABLE:  # pragma: no cover
            model.update(update_data=dict(data))
            return
        key = tuple((component, id(array)) for component, array in data.items())
        cached = self._datasets.get(key)
        if cached is None:
            if len(self._datasets) >= self.MAX_DATASETS:
                del self._datasets[next(iter(self._datasets))]
            arrays = dict(data)  # keeps the arrays (and so their ids) alive as long as the dataset
            view = prepare_update_view(arrays)
            cached = self._datasets[key] = (view, view.get_dataset_ptr(), arrays)
        get_power_grid_core().update_model(model._model, cached[1])  # noqa: SLF001
        assert_no_error()


class UpdateArrays:
    """One update array per component, kept: :meth:`blank` resets it in place to its ids and every
    attribute null ("keep") — a byte copy of a template made once (``initialize_array`` costs ~3x
    as much per call) — and returns the same array object every time, so :class:`UpdatePusher`
    makes its C dataset once. An array is valid until the next :meth:`blank` of its component."""

    def __init__(self) -> None:
        self._kept: dict[ComponentType, tuple[np.ndarray, np.ndarray]] = {}

    def blank(self, component: ComponentType, ids: np.ndarray) -> np.ndarray:
        """The update array of ``component`` (one row per id in ``ids``, fixed at the first call)."""
        kept = self._kept.get(component)
        if kept is None:
            array = initialize_array(DatasetType.update, component, len(ids))
            array["id"] = ids
            kept = self._kept[component] = (array, array.view(np.uint8).copy())
        array, null = kept
        array.view(np.uint8)[...] = null
        return array
