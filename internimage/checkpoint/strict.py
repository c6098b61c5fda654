"""Whole-model checkpoint loads that refuse a file which does not fit, or cannot be read.

mmengine loads checkpoints with ``strict=False``: a file that misses weights of the model,
or holds keys it lacks, only logs a warning, and evaluation goes on with randomly
initialised layers. A file cut short or corrupted fails deep inside ``torch.load`` with a
message that does not name it; one with a flipped byte even loads. Here:

* :func:`check_checkpoint_file` refuses, naming the file and what is wrong, a path that
  does not exist, is a directory, cannot be read, is empty, truncated, or fails the zip
  CRC check of ``torch.save``'s format.
* :func:`check_state_dict_fits` refuses a state dict whose keys or shapes differ from a
  model's (:class:`CheckpointMismatchError`: the file, counts and first names of missing,
  unexpected and reshaped keys).
* :func:`internimage.checkpoint.load_model_checkpoint` does both for our own whole-model
  loads (ONNX export).
* :func:`install_strict_checkpoint_loading`, called by ``import internimage``, puts the
  same rules into mmengine's loader, and with it into every upstream entry point
  (``Runner`` ``load_from``/resume, ``DetInferencer``, ``init_detector``,
  ``MMSegInferencer``, mmseg ``init_model``, ``ImageClassificationInferencer``,
  mmpretrain ``get_model``/``init_model``). It wraps two functions that all of those reach
  through a module attribute looked up at call time:

  - ``CheckpointLoader.load_checkpoint`` (every read): local files are checked first,
    content errors are re-raised naming the file, and the path is remembered for the
    error of the load that follows;
  - ``mmengine.runner.checkpoint.load_state_dict`` (every state-dict load): when the
    target is a whole model (an mmengine ``BaseModel``: classifier, detector, segmentor,
    possibly behind a DDP wrapper) the state dict must fit it exactly. Loads into parts
    of a model (``init_cfg=dict(type='Pretrained', ...)`` of a backbone or neck, EMA
    copies) keep mmengine's rules; so does our backbone loader
    (:func:`internimage.checkpoint.load_backbone_checkpoint`).

A partial load is one explicit choice: ``--allow-partial`` on the tools, or
``with partial_checkpoint_loading():`` in Python (docs/checkpoints.md).
"""

import argparse
import contextlib
import contextvars
import functools
import os.path as osp
import pickle
import zipfile
from typing import Callable, Dict, Iterator, List, Tuple

import torch
from mmengine.model import BaseModel, is_model_wrapper
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader
from torch import nn

from .errors import CheckpointMismatchError, CheckpointReadError, read_failure

__all__ = [
    'check_checkpoint_file',
    'fit_report',
    'check_state_dict_fits',
    'partial_checkpoint_loading',
    'partial_loading_allowed',
    'install_strict_checkpoint_loading',
    'add_allow_partial_argument',
]

# torch.save's zip format starts with a local file header.
_ZIP_MAGIC = b'PK\x03\x04'
# What torch.load raises on bytes it cannot parse (IndexError/KeyError: a pickle that
# stops in the middle of a structure).
CONTENT_ERRORS = (
    RuntimeError,
    EOFError,
    IndexError,
    KeyError,
    ValueError,
    pickle.UnpicklingError,
    zipfile.BadZipFile,
)
_partial_allowed: contextvars.ContextVar = contextvars.ContextVar(
    'internimage_partial_checkpoint', default=False
)
_last_read: contextvars.ContextVar = contextvars.ContextVar(
    'internimage_last_checkpoint', default=None
)


def check_checkpoint_file(path: str, what: str = 'checkpoint') -> None:
    """Raise an error naming ``path`` unless it is a readable, intact local checkpoint.

    ``torch.save`` writes a zip archive: a file cut short by a crash loses the central
    directory at its end, and flipped bytes break a member's CRC (which ``torch.load``
    does not check: such a file loads with wrong values). Files in torch's older pickle
    format are only checked for existence and readability here; their damage shows when
    they are read (:func:`install_strict_checkpoint_loading` names the file then).

    Args:
        path (str): Local file path.
        what (str): How the message calls the file, e.g. ``'--resume checkpoint'``.

    Raises:
        FileNotFoundError: no such path.
        CheckpointReadError: a directory, unreadable, empty, truncated or corrupted file.
    """
    if osp.isdir(path):
        raise CheckpointReadError(path, f'{what} {path} is a directory, not a checkpoint file')
    if not osp.exists(path):
        raise FileNotFoundError(f'{what} not found: {path}')
    try:
        with open(path, 'rb') as file:
            magic = file.read(len(_ZIP_MAGIC))
    except OSError as error:
        raise CheckpointReadError(
            path, f'{what} {path} cannot be read: {error.strerror or error}'
        ) from error
    if not magic:
        raise CheckpointReadError(path, f'{what} {path} is empty (0 bytes)')
    if magic != _ZIP_MAGIC:
        return  # torch's legacy format: checked when read
    try:
        with zipfile.ZipFile(path) as archive:
            bad_member = archive.testzip()
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise CheckpointReadError(
            path,
            f'{what} {path} is not a readable torch checkpoint (truncated or corrupted?): {error}',
        ) from error
    if bad_member is not None:
        raise CheckpointReadError(
            path, f'{what} {path} is corrupted: CRC mismatch in member {bad_member!r}'
        )


def is_local_path(path: str) -> bool:
    """A file on this machine, not a URL or a file-backend path (``scheme://``)."""
    return '://' not in str(path)


@contextlib.contextmanager
def partial_checkpoint_loading(allowed: bool = True) -> Iterator[None]:
    """Within this context, whole-model loads through mmengine may leave weights unloaded
    or skip keys (mmengine's own ``strict=False`` rules: warnings, no error).

    Args:
        allowed (bool): False keeps the strict rule (lets a tool pass its flag through).
    """
    token = _partial_allowed.set(bool(allowed))
    try:
        yield
    finally:
        _partial_allowed.reset(token)


def add_allow_partial_argument(parser: argparse.ArgumentParser) -> None:
    """The one flag every tool that loads a whole model takes for a partial load.

    Args:
        parser (argparse.ArgumentParser): The tool's parser; gains ``--allow-partial``
            (``args.allow_partial``).
    """
    parser.add_argument(
        '--allow-partial',
        action='store_true',
        help='load a checkpoint that misses weights of the model or holds keys it lacks '
        '(matching keys are loaded, the rest is logged); by default such a file is refused',
    )


def partial_loading_allowed() -> bool:
    """Whether the current context is inside :func:`partial_checkpoint_loading`."""
    return _partial_allowed.get()


def _unwrapped(module: nn.Module) -> nn.Module:
    while is_model_wrapper(module):
        module = module.module
    return module


def fit_report(
    model: nn.Module, state_dict: Dict[str, object]
) -> Tuple[List[str], List[str], List[str]]:
    """How ``state_dict`` fits ``model``.

    Args:
        model (nn.Module): The model (not a wrapper).
        state_dict (dict): Keys as the model names them.

    Returns:
        tuple: (missing keys, unexpected keys, ``'key: file (shape) vs model (shape)'``
        entries of keys with another shape).
    """
    own = model.state_dict()
    # mmengine's loader ignores a missing BN counter, and so do we.
    missing = [k for k in own if k not in state_dict and not k.endswith('num_batches_tracked')]
    unexpected = [k for k in state_dict if k not in own]
    reshaped = [
        f'{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}'
        for k, v in state_dict.items()
        if k in own and torch.is_tensor(v) and v.shape != own[k].shape
    ]
    return missing, unexpected, reshaped


def check_state_dict_fits(model: nn.Module, state_dict: Dict[str, object], path: str) -> None:
    """Raise :class:`CheckpointMismatchError` unless ``state_dict`` holds exactly the
    model's keys with the model's shapes (``num_batches_tracked`` may be missing).

    Args:
        model (nn.Module): The model (a DDP-style wrapper is looked through).
        state_dict (dict): Keys as the model names them (wrappers and ``module.`` removed).
        path (str): The file, for the message.
    """
    missing, unexpected, reshaped = fit_report(_unwrapped(model), state_dict)
    if missing or unexpected or reshaped:
        raise CheckpointMismatchError(path, missing, unexpected, reshaped)


# ------------------------------------------------------------------ mmengine patch
_PATCH_MARK = '__internimage_strict__'


def _strict_read(original: Callable) -> Callable:
    """Wrap ``CheckpointLoader.load_checkpoint(filename, map_location=None, logger=...)``."""

    @functools.wraps(original)
    def load_checkpoint(filename, map_location=None, logger='current'):
        path = str(filename)
        if is_local_path(path):
            check_checkpoint_file(path)
        try:
            checkpoint = original(filename, map_location, logger)
        except CONTENT_ERRORS as error:
            raise read_failure(path, error) from error
        _last_read.set(path)
        return checkpoint

    setattr(load_checkpoint, _PATCH_MARK, original)
    return load_checkpoint


def _strict_load_state_dict(original: Callable) -> Callable:
    """Wrap ``mmengine.runner.checkpoint.load_state_dict(module, state_dict, strict, logger)``."""

    @functools.wraps(original)
    def load_state_dict(module, state_dict, strict=False, logger=None):
        if isinstance(_unwrapped(module), BaseModel) and not _partial_allowed.get():
            check_state_dict_fits(module, state_dict, _last_read.get() or 'the checkpoint')
        return original(module, state_dict, strict, logger)

    setattr(load_state_dict, _PATCH_MARK, original)
    return load_state_dict


def install_strict_checkpoint_loading() -> None:
    """Put :func:`check_checkpoint_file` and :func:`check_state_dict_fits` into mmengine's
    checkpoint loading (see the module docstring). ``import internimage`` calls it; calling
    it again changes nothing. Relies on ``CheckpointLoader.load_checkpoint`` and
    ``mmengine.runner.checkpoint.load_state_dict`` keeping their mmengine 0.10 signatures
    and being looked up at call time (tests/models/test_strict_loading.py checks both).
    """
    if not hasattr(CheckpointLoader.load_checkpoint, _PATCH_MARK):
        CheckpointLoader.load_checkpoint = staticmethod(
            _strict_read(CheckpointLoader.load_checkpoint)
        )
    if not hasattr(mmengine_checkpoint.load_state_dict, _PATCH_MARK):
        mmengine_checkpoint.load_state_dict = _strict_load_state_dict(
            mmengine_checkpoint.load_state_dict
        )
