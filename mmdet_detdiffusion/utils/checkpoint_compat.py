"""Let mmengine checkpoints load under torch >= 2.6, where ``torch.load`` defaults to ``weights_only=True``.

mmengine 0.10.7 pickles its ``MessageHub`` state (``HistoryBuffer`` objects holding numpy arrays and
scalars) into every checkpoint, which the weights-only unpickler rejects. Instead of turning the safe
unpickler off, we allow-list exactly the globals mmengine writes. Importing ``mmdet_detdiffusion``
calls :func:`register_mmengine_safe_globals`, so Runner resume, ``load_from`` and ``init_detector``
all work.
"""
import importlib
import pickle
from typing import List

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer


def _numpy_globals() -> List[object]:
    """numpy callables and types that appear in pickled arrays, scalars and dtypes."""
    found: List[object] = [np.ndarray, np.dtype]
    # The module that pickles reference is numpy.core.multiarray (numpy 1.x) or numpy._core (2.x).
    for module_name in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        found += [module._reconstruct, module.scalar]
    # Concrete dtype classes (numpy >= 1.25 pickles e.g. numpy.dtypes.Float64DType).
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        found += [getattr(dtypes, name) for name in dir(dtypes) if name.endswith('DType')]
    return found


def _history_buffer_getattr(obj: object, name: str) -> object:
    """Stand-in for ``getattr`` in checkpoints: HistoryBuffer pickles its statistics methods as
    ``getattr(HistoryBuffer, 'mean')``. Only public methods of HistoryBuffer are reachable."""
    if obj is not HistoryBuffer or name.startswith('_') or not callable(getattr(obj, name, None)):
        raise pickle.UnpicklingError(f'checkpoint asks for getattr({obj!r}, {name!r}); only public '
                                     'methods of mmengine HistoryBuffer are allowed')
    return getattr(obj, name)


def mmengine_safe_globals() -> List[object]:
    """Every global an mmengine 0.10 checkpoint needs beyond torch's default allow-list."""
    return [HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr')] + _numpy_globals()


def register_mmengine_safe_globals() -> None:
    """Add :func:`mmengine_safe_globals` to torch's weights-only allow-list (idempotent)."""
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is None:  # torch < 2.4 loads with weights_only=False by default
        return
    add_safe_globals(mmengine_safe_globals())
