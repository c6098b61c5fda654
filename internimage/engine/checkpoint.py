"""Let ``torch.load(weights_only=True)`` read mmengine's own checkpoints.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``, which only
unpickles tensors, containers and allow-listed globals. mmengine 0.10.7 calls
``torch.load`` without the argument, and the checkpoints its Runner writes
carry more than tensors in ``meta`` and ``message_hub``: numpy arrays and
scalars (logged values, seeds) and mmengine's ``HistoryBuffer``. Rather than
switching safety off for every file, we allow exactly those types.
"""
from typing import Any, List

import numpy as np
import torch

__all__ = ['checkpoint_safe_globals', 'register_checkpoint_safe_globals']


def _numpy_reconstruct() -> Any:
    # numpy < 2 keeps it in numpy.core, numpy 2 in numpy._core; the pickle
    # refers to whichever wrote the file, so allow the one that is installed.
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def _numpy_scalar() -> Any:
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import scalar
    return scalar


def checkpoint_safe_globals() -> List[Any]:
    """The non-tensor types an mmengine Runner checkpoint pickles.

    Found by listing ``torch.serialization.get_unsafe_globals_in_checkpoint``
    over checkpoints written by the Runner for the three tasks (the dtype
    classes cover the numeric types mmengine logs).
    """
    from mmengine.logging import HistoryBuffer

    dtype_classes = [
        type(np.dtype(name))
        for name in ('float64', 'float32', 'float16', 'int64', 'int32',
                     'uint8', 'bool')
    ]
    return [
        np.ndarray,
        np.dtype,
        _numpy_reconstruct(),
        _numpy_scalar(),
        *dtype_classes,
        HistoryBuffer,
    ]


def register_checkpoint_safe_globals() -> None:
    """Allow-list :func:`checkpoint_safe_globals` for ``torch.load``.

    Idempotent; affects only the current process.
    """
    torch.serialization.add_safe_globals(checkpoint_safe_globals())
