"""Let ``torch.load(weights_only=True)`` read mmengine's own checkpoints.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``, which only
unpickles tensors, containers and allow-listed globals. mmengine 0.10.7 calls
``torch.load`` without the argument, and the checkpoints its Runner writes
carry more than tensors in ``meta`` and ``message_hub``: numpy arrays and
scalars (logged values, seeds) and mmengine's ``HistoryBuffer``, which also
pickles its statistic methods as ``getattr(HistoryBuffer, 'mean')`` etc.
Rather than switching safety off for every file, we allow exactly those types,
and ``getattr`` only in that one form.
"""

import pickle
from typing import Any, List, Tuple, Union

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


_HISTORY_BUFFER_STATISTICS = frozenset({'min', 'max', 'current', 'mean'})


def _history_buffer_statistic(owner: Any, name: str) -> Any:
    """Stands in for ``getattr`` while unpickling: only HistoryBuffer methods.

    A general ``getattr`` would let a crafted file reach arbitrary objects
    (``__globals__``, ``__subclasses__``...), so anything else is refused.
    """
    from mmengine.logging import HistoryBuffer

    # The four built-in statistics, plus any registered in this process
    # (HistoryBuffer fills its registry lazily, on first use).
    allowed = _HISTORY_BUFFER_STATISTICS | set(HistoryBuffer._statistics_methods)
    if owner is HistoryBuffer and name in allowed:
        return getattr(owner, name)
    raise pickle.UnpicklingError(
        f'refusing getattr({owner!r}, {name!r}) in a checkpoint: only '
        'HistoryBuffer statistic methods are allowed'
    )


def checkpoint_safe_globals() -> List[Union[Any, Tuple[Any, str]]]:
    """The non-tensor globals an mmengine Runner checkpoint pickles.

    Found by listing ``torch.serialization.get_unsafe_globals_in_checkpoint``
    over checkpoints written by the Runner for the three tasks (the dtype
    classes cover the numeric types mmengine logs). ``builtins.getattr`` is
    mapped to a stand-in that only resolves HistoryBuffer statistic methods.
    """
    from mmengine.logging import HistoryBuffer

    dtype_classes = [
        type(np.dtype(name))
        for name in ('float64', 'float32', 'float16', 'int64', 'int32', 'uint8', 'bool')
    ]
    return [
        np.ndarray,
        np.dtype,
        _numpy_reconstruct(),
        _numpy_scalar(),
        *dtype_classes,
        HistoryBuffer,
        (_history_buffer_statistic, 'builtins.getattr'),
    ]


def register_checkpoint_safe_globals() -> None:
    """Allow-list :func:`checkpoint_safe_globals` for ``torch.load``.

    Idempotent; affects only the current process.
    """
    torch.serialization.add_safe_globals(checkpoint_safe_globals())
