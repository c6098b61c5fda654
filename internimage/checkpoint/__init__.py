"""Reading InternImage checkpoints: released files and our own Runner's.

The one place that knows the checkpoint key layouts (``docs/checkpoints.md``) and what
``torch.load(weights_only=True)`` may unpickle. Depends only on torch, numpy and
mmengine (``logging`` and ``fileio``), so the model layer imports it
at the top.

Released layouts:

* classification: ``{'model': sd}``; backbone keys at the root (``patch_embed.*``,
  ``levels.*``), head keys ``conv_head.*``, ``head.*`` (T-XL) or ``dcnv3_head_x4.*``,
  ``dcnv3_head_x3.*``, ``clip_projector.*``, ``fc_norm.*``, ``head.*`` (H/G);
* detection / segmentation: ``{'state_dict': sd}`` with the backbone under ``backbone.``
  (optionally behind a ``module.`` of a distributed wrapper).

Our backbone uses the official submodule names, so mapping is stripping wrappers and
prefixes; only the classifier head is renamed (``head.*`` -> ``head.fc.*``) to fit the
mmpretrain heads of :mod:`internimage.models.heads`.

Runner checkpoints: since torch 2.6, ``torch.load`` defaults to ``weights_only=True``,
which only unpickles tensors, containers and allow-listed globals. mmengine 0.10.7 calls
``torch.load`` without the argument, and the checkpoints its Runner writes carry more
than tensors in ``meta`` and ``message_hub``: numpy arrays and scalars (logged values,
seeds) and mmengine's ``HistoryBuffer``, which also pickles its statistic methods as
``getattr(HistoryBuffer, 'mean')`` etc. Rather than switching safety off for every file,
:func:`checkpoint_safe_globals` allows exactly those types, and ``getattr`` only in that
one form. Importing the package registers them once (:func:`register_checkpoint_safe_globals`),
so mmengine's own loads, and the upstream inference APIs that use them, read Runner files.

Reading (:func:`load_checkpoint_file`) passes ``weights_only`` to the one ``torch.load`` of
each read, explicitly, through public APIs only: local paths, ``http(s)://`` URLs with
``torch.hub.load_state_dict_from_url`` (downloaded once into torch's hub cache, as mmengine
does; mmengine's own URL loader would unpickle fully) and the other schemes of mmengine's file
backends (``s3://``, ``petrel://``...) from ``mmengine.fileio.get``. No process-wide switch.
Files that need a full unpickle are refused with
:class:`UntrustedCheckpointError`, which names the pickled type and the explicit opt-in
(``trust=True``; ``trust_checkpoint=True`` in a backbone ``init_cfg``;
``--trust-checkpoint`` on the tools).
"""

import importlib
import io
import os
import pickle
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine import fileio
from mmengine.logging import HistoryBuffer, print_log
from torch import nn

from .errors import (
    PARTIAL_OPTION,
    TRUST_OPTION,
    CheckpointMismatchError,
    CheckpointReadError,
    UntrustedCheckpointError,
    read_failure,
)
from .strict import (
    CONTENT_ERRORS,
    add_allow_partial_argument,
    check_checkpoint_file,
    check_state_dict_fits,
    fit_report,
    install_strict_checkpoint_loading,
    is_local_path,
    partial_checkpoint_loading,
)

__all__ = [
    'load_checkpoint_file',
    'extract_state_dict',
    'split_backbone_state_dict',
    'load_backbone_checkpoint',
    'convert_classification_checkpoint',
    'BACKBONE_KEY_PREFIXES',
    'HEAD_KEY_PREFIXES',
    'checkpoint_safe_globals',
    'register_checkpoint_safe_globals',
    'UntrustedCheckpointError',
    'TRUST_OPTION',
    'CheckpointReadError',
    'CheckpointMismatchError',
    'PARTIAL_OPTION',
    'check_checkpoint_file',
    'check_state_dict_fits',
    'partial_checkpoint_loading',
    'load_model_checkpoint',
    'install_strict_checkpoint_loading',
    'add_allow_partial_argument',
]

BACKBONE_KEY_PREFIXES = ('patch_embed.', 'levels.')
# Head of the released classifiers (``head.`` is the final Linear in both kinds).
HEAD_KEY_PREFIXES = (
    'conv_head.',
    'dcnv3_head_x4.',
    'dcnv3_head_x3.',
    'clip_projector.',
    'fc_norm.',
    'head.',
)
_WRAPPER_KEYS = ('state_dict', 'model', 'module')
_STRIPPED_PREFIXES = ('module.',)


def _numpy_multiarray(name: str) -> Any:
    """``numpy._core.multiarray.<name>`` (numpy 2), else ``numpy.core.multiarray.<name>``.

    The pickle refers to whichever numpy wrote the file; allow the one that is installed.
    """
    try:
        return getattr(importlib.import_module('numpy._core.multiarray'), name)
    except ImportError:  # numpy < 2
        return getattr(importlib.import_module('numpy.core.multiarray'), name)


_HISTORY_BUFFER_STATISTICS = frozenset({'min', 'max', 'current', 'mean'})


def _history_buffer_statistic(owner: Any, name: str) -> Any:
    """Stands in for ``getattr`` while unpickling: only HistoryBuffer methods.

    A general ``getattr`` would let a crafted file reach arbitrary objects
    (``__globals__``, ``__subclasses__``...), so anything else is refused.
    """
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
    dtype_classes = [
        type(np.dtype(name))
        for name in ('float64', 'float32', 'float16', 'int64', 'int32', 'uint8', 'bool')
    ]
    return [
        np.ndarray,
        np.dtype,
        _numpy_multiarray('_reconstruct'),
        _numpy_multiarray('scalar'),
        *dtype_classes,
        HistoryBuffer,
        (_history_buffer_statistic, 'builtins.getattr'),
    ]


def register_checkpoint_safe_globals() -> None:
    """Allow-list :func:`checkpoint_safe_globals` for ``torch.load(weights_only=True)``.

    ``import internimage`` calls it, so every ``weights_only`` load in the process (mmengine's
    ``load_checkpoint``, the Runner's ``load_from``/resume, mmdet/mmseg/mmpretrain's
    ``init_*`` and inferencers) reads mmengine's own checkpoints. It only adds these types
    to torch's allow-list (a set: calling it again changes nothing); nothing switches to
    full unpickling.

    Note: leaving a ``torch.serialization.safe_globals([...])`` context removes the listed
    types from the allow-list even if they were registered before it, so code here never
    uses that context with these types; :func:`load_checkpoint_file` re-registers them.
    """
    torch.serialization.add_safe_globals(checkpoint_safe_globals())


# mmengine's model-zoo aliases (mmcv-era backbones, no InternImage weights among them).
_MODEL_ZOO_SCHEMES = ('open-mmlab://', 'openmmlab://', 'torchvision://', 'modelzoo://', 'mmcls://')


def _torch_load(path: str, weights_only: bool, logger: str) -> Any:
    """The one ``torch.load`` of ``path`` (on the CPU), with ``weights_only`` passed explicitly.

    ``http(s)://``: ``torch.hub.load_state_dict_from_url`` (cached in ``<TORCH_HOME>/hub/
    checkpoints``); another ``scheme://``: the bytes from ``mmengine.fileio.get`` (its file
    backends: ``s3://``, ``petrel://``...); anything else: a local file.
    """
    print_log(f'Loads checkpoint from {path}', logger=logger)
    if path.startswith(('http://', 'https://')):
        return torch.hub.load_state_dict_from_url(
            path, map_location='cpu', progress=False, weights_only=weights_only
        )
    if '://' in path:
        with io.BytesIO(fileio.get(path)) as buffer:
            return torch.load(buffer, map_location='cpu', weights_only=weights_only)
    local = os.path.expanduser(path)
    if not os.path.isfile(local):
        raise FileNotFoundError(f'checkpoint file not found: {path}')
    return torch.load(local, map_location='cpu', weights_only=weights_only)


def load_checkpoint_file(path: str, trust: bool = False, logger: str = 'current') -> dict:
    """Reads a checkpoint on CPU.

    Local paths, ``http(s)://`` URLs (downloaded once into torch's hub cache) and mmengine's
    file-backend schemes (``s3://``, ``petrel://``...) all work. By default the
    file is read with ``weights_only=True``: tensors, containers and the types of
    :func:`checkpoint_safe_globals`. A file that pickles anything else raises
    :class:`UntrustedCheckpointError` naming the type; ``trust=True`` reads it with a full
    unpickle instead (only for files you trust). There is no silent fallback.
    """
    register_checkpoint_safe_globals()  # in case a safe_globals context removed them
    if path.startswith(_MODEL_ZOO_SCHEMES):
        raise ValueError(
            f'{path}: mmengine model-zoo aliases are not read here (they hold no InternImage '
            'weights); pass the file path or URL'
        )
    if is_local_path(path):
        check_checkpoint_file(path)  # missing, a directory, unreadable, truncated, bad CRC
    try:
        checkpoint = _torch_load(path, weights_only=not trust, logger=logger)
    except CONTENT_ERRORS as error:
        raise read_failure(path, error) from error
    if not isinstance(checkpoint, dict):
        raise TypeError(f'{path}: expected a dict checkpoint, got {type(checkpoint).__name__}')
    return checkpoint


def extract_state_dict(checkpoint: dict) -> 'OrderedDict[str, torch.Tensor]':
    """Unwraps ``state_dict`` / ``model`` / ``module`` containers and ``module.`` prefixes."""
    state_dict = checkpoint
    while True:
        wrapper = next((k for k in _WRAPPER_KEYS if isinstance(state_dict.get(k), dict)), None)
        if wrapper is None:
            break
        state_dict = state_dict[wrapper]
    result = OrderedDict()
    for key, value in state_dict.items():
        if not torch.is_tensor(value):
            continue  # metadata next to the weights (e.g. 'epoch')
        for prefix in _STRIPPED_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
        result[key] = value
    if not result:
        raise ValueError(
            f'the checkpoint holds no tensors (looked inside {list(_WRAPPER_KEYS)} wrappers)'
        )
    return result


def split_backbone_state_dict(
    state_dict: Dict[str, torch.Tensor], prefix: Optional[str] = None
) -> Tuple['OrderedDict[str, torch.Tensor]', List[str]]:
    """Picks the backbone's entries out of a full model state dict.

    Args:
        state_dict (dict): Unwrapped state dict (see :func:`extract_state_dict`).
        prefix (str, optional): Prefix of the backbone keys. None detects it:
            ``backbone.`` when any key has it (detection / segmentation / mmpretrain
            files), else none (official classification files).

    Returns:
        tuple: (backbone state dict with the prefix removed, the other keys).
    """
    if prefix is None:
        prefix = 'backbone.' if any(k.startswith('backbone.') for k in state_dict) else ''
    backbone, others = OrderedDict(), []
    for key, value in state_dict.items():
        if prefix and key.startswith(prefix):
            backbone[key[len(prefix) :]] = value
        elif not prefix and not key.startswith(HEAD_KEY_PREFIXES):
            backbone[key] = value
        else:
            others.append(key)
    return backbone, others


def _matching_backbone_weights(
    backbone: nn.Module, weights: Dict[str, torch.Tensor], path: str
) -> List[str]:
    """The keys of ``weights`` the backbone has; raises if there are none, or if any of
    them has another shape than the backbone's (usually a checkpoint of another arch)."""
    own = backbone.state_dict()
    matched = [k for k in weights if k in own]
    if not matched:
        raise KeyError(
            f'{path} has no InternImage backbone weights: none of its '
            f'{len(weights)} candidate keys (e.g. {list(weights)[:3]}) matches the '
            f'backbone (e.g. {list(own)[:3]})'
        )
    mismatched = [
        f'{k}: checkpoint {tuple(weights[k].shape)} vs model {tuple(own[k].shape)}'
        for k in matched
        if weights[k].shape != own[k].shape
    ]
    if mismatched:
        raise ValueError(
            f'{path} does not fit this backbone (another arch?); shape '
            'mismatches:\n  ' + '\n  '.join(mismatched)
        )
    return matched


def _log_backbone_load(
    path: str,
    loaded: int,
    ignored: List[str],
    missing: List[str],
    unexpected: List[str],
    logger: str,
) -> None:
    """What a backbone load reports (docs/checkpoints.md, "What the loader reports"):
    info for the count and for layer-scale gammas left at their init, warnings for other
    missing keys and for unexpected ones."""
    layer_scales = [k for k in missing if k.rsplit('.', 1)[-1] in ('gamma1', 'gamma2')]
    missing_other = [k for k in missing if k not in layer_scales]
    print_log(
        f'Loaded {loaded} backbone tensors from {path}'
        + (f' (ignored {len(ignored)} non-backbone keys)' if ignored else ''),
        logger=logger,
    )
    if layer_scales:
        print_log(
            'Layer-scale parameters not in the checkpoint keep their init value: '
            + ', '.join(layer_scales),
            logger=logger,
        )
    if missing_other:
        print_log(
            'Missing backbone keys (left at init): ' + ', '.join(missing_other),
            logger=logger,
            level=30,
        )
    if unexpected:
        print_log(
            'Unexpected backbone keys (ignored): ' + ', '.join(unexpected), logger=logger, level=30
        )


def load_backbone_checkpoint(
    backbone: nn.Module,
    path: str,
    prefix: Optional[str] = None,
    logger: str = 'current',
    trust: bool = False,
) -> Tuple[List[str], List[str]]:
    """Loads a released (or our own) checkpoint into an InternImage backbone.

    Missing and unexpected backbone keys are logged by name; ``gamma1``/``gamma2``
    absent from the file keep their ``layer_scale`` init (downstream recipes add layer
    scale to T/S/B). Raises if no key matches or a matching key has another shape.

    Args:
        backbone (nn.Module): The backbone to fill.
        path (str): Checkpoint file, URL or any path mmengine's ``CheckpointLoader`` reads.
        prefix (str, optional): Prefix of the backbone keys in the file (None: detect).
        logger (str): mmengine logger name. Defaults to ``'current'``.
        trust (bool): Read a file that pickles non-tensor objects with a full unpickle
            (see :func:`load_checkpoint_file`). Defaults to False.

    Returns:
        tuple: (missing keys, unexpected keys).
    """
    state_dict = extract_state_dict(load_checkpoint_file(path, trust=trust, logger=logger))
    weights, ignored = split_backbone_state_dict(state_dict, prefix)
    matched = _matching_backbone_weights(backbone, weights, path)
    missing, unexpected = backbone.load_state_dict(weights, strict=False)
    _log_backbone_load(path, len(matched), ignored, missing, unexpected, logger)
    return list(missing), list(unexpected)


def load_model_checkpoint(
    model: nn.Module, path: str, allow_partial: bool = False, trust: bool = False
) -> dict:
    """Read ``path`` safely and load it into the whole ``model``, refusing a misfit.

    The weights are found as the backbone loader finds them (``state_dict`` / ``model`` /
    ``module`` wrappers and ``module.`` prefixes removed).

    Args:
        model (nn.Module): The whole model.
        path (str): Checkpoint file or URL.
        allow_partial (bool): Load the keys that fit and log the rest instead of raising.
        trust (bool): Full unpickle (see :func:`~internimage.checkpoint.load_checkpoint_file`).

    Returns:
        dict: The file's contents (for its ``meta``).

    Raises:
        CheckpointMismatchError: keys or shapes differ and ``allow_partial`` is False.
    """
    contents = load_checkpoint_file(path, trust=trust)
    state_dict = extract_state_dict(contents)
    missing, unexpected, reshaped = fit_report(model, state_dict)
    if missing or unexpected or reshaped:
        mismatch = CheckpointMismatchError(path, missing, unexpected, reshaped)
        if not allow_partial:
            raise mismatch
        print_log(f'--allow-partial: {mismatch}', logger='current', level=30)
        # torch refuses a reshaped key even with strict=False: leave those at init.
        skipped = {entry.split(':')[0] for entry in reshaped}
        state_dict = {k: v for k, v in state_dict.items() if k not in skipped}
    model.load_state_dict(state_dict, strict=False)
    return contents


def convert_classification_checkpoint(
    state_dict: Dict[str, torch.Tensor],
) -> 'OrderedDict[str, torch.Tensor]':
    """Maps an official classification state dict to our mmpretrain ``ImageClassifier``.

    Backbone keys go under ``backbone.``; head keys under ``head.``, with the final
    Linear ``head.*`` renamed ``head.fc.*``. Unknown keys raise.
    """
    converted, unknown = OrderedDict(), []
    for key, value in extract_state_dict(state_dict).items():
        if key.startswith(BACKBONE_KEY_PREFIXES):
            converted['backbone.' + key] = value
        elif key.startswith('head.'):
            converted['head.fc.' + key[len('head.') :]] = value
        elif key.startswith(HEAD_KEY_PREFIXES):
            converted['head.' + key] = value
        else:
            unknown.append(key)
    if unknown:
        raise KeyError(
            'not an official InternImage classification checkpoint; unknown keys: '
            + ', '.join(unknown[:20])
            + (' ...' if len(unknown) > 20 else '')
        )
    return converted
