"""The errors of checkpoint loading, each naming the file and what is wrong with it."""

import pickle
import re
from typing import List, Optional

__all__ = [
    'TRUST_OPTION',
    'PARTIAL_OPTION',
    'UntrustedCheckpointError',
    'CheckpointReadError',
    'CheckpointMismatchError',
    'read_failure',
]

#: How a user opts in to a full unpickle, named in :class:`UntrustedCheckpointError`.
TRUST_OPTION = (
    "trust=True (backbone init_cfg=dict(type='Pretrained', checkpoint=..., "
    'trust_checkpoint=True); --trust-checkpoint on tools/convert_checkpoint.py)'
)


class UntrustedCheckpointError(RuntimeError):
    """A checkpoint pickles a type that ``weights_only=True`` loading does not allow.

    Attributes:
        path (str): The file or URL.
        global_name (str | None): The refused type, e.g. ``'argparse.Namespace'``.
    """

    def __init__(self, path: str, global_name: Optional[str], detail: str):
        self.path = path
        self.global_name = global_name
        what = f'the type {global_name}' if global_name else 'a non-tensor object'
        super().__init__(
            f'{path} pickles {what}, which safe loading (torch.load weights_only=True) '
            f'refuses. Loading it needs a full unpickle, which can run code from the file: '
            f'only if you trust the file, opt in with {TRUST_OPTION}.\n{detail}'
        )


#: How a user asks for a partial load, named in :class:`CheckpointMismatchError`.
PARTIAL_OPTION = (
    '--allow-partial on the tools, or `with internimage.checkpoint.partial_checkpoint_loading():`'
    ' around the load in Python'
)
#: How many key names an error lists per kind.
_NAMES_SHOWN = 5
# torch names a refused global as "GLOBAL module.name"; our getattr stand-in as "refusing
# getattr(...)". Other weights_only failures are damaged files, not untrusted ones.
_REFUSED_GLOBAL = re.compile(r'GLOBAL ([\w.]+)|refusing (getattr\([^)]*\))')


class CheckpointReadError(ValueError):
    """A checkpoint path that is not a readable torch checkpoint (directory, unreadable,
    empty, truncated, corrupted). The message names the file and the problem.

    Attributes:
        path (str): The file.
    """

    def __init__(self, path: str, message: str):
        self.path = path
        super().__init__(message)


class CheckpointMismatchError(ValueError):
    """A checkpoint whose keys or shapes differ from the model it is loaded into.

    Attributes:
        path (str): The file (or ``'the checkpoint'`` when not known).
        missing (list[str]): Model keys the file does not hold.
        unexpected (list[str]): File keys the model does not have.
        reshaped (list[str]): ``'key: file (shape) vs model (shape)'`` entries.
    """

    def __init__(self, path: str, missing: List[str], unexpected: List[str], reshaped: List[str]):
        self.path, self.missing, self.unexpected, self.reshaped = (
            path,
            missing,
            unexpected,
            reshaped,
        )
        problems = [
            _listing('missing key(s) (model weights not in the file)', missing),
            _listing('unexpected key(s) (not in the model)', unexpected),
            _listing('shape mismatch(es)', reshaped),
        ]
        super().__init__(
            f'checkpoint {path} does not fit the model: '
            + '; '.join(p for p in problems if p)
            + _layout_hint(missing, unexpected)
            + f'. Nothing was loaded. To load the matching part anyway, use {PARTIAL_OPTION}.'
        )


def _listing(what: str, names: List[str]) -> str:
    if not names:
        return ''
    shown = ', '.join(names[:_NAMES_SHOWN])
    return f'{len(names)} {what}: {shown}' + (', ...' if len(names) > _NAMES_SHOWN else '')


def _layout_hint(missing: List[str], unexpected: List[str]) -> str:
    """Name the likely cause when the file is a known layout the model cannot take."""
    if any(k.startswith(('patch_embed.', 'levels.')) for k in unexpected) and any(
        k.startswith('backbone.') for k in missing
    ):
        return (
            ' (an official classification checkpoint? convert it with '
            'tools/convert_checkpoint.py first)'
        )
    if unexpected and set(unexpected) <= {'model', 'model_ema', 'optimizer', 'meta'}:
        return ' (its weights sit under a wrapper key; convert it with tools/convert_checkpoint.py)'
    return ''


def read_failure(path: str, error: BaseException) -> Exception:
    """The error to raise for ``error`` met while reading ``path``: an
    :class:`~internimage.checkpoint.UntrustedCheckpointError` for a type that safe loading
    refuses, a :class:`CheckpointReadError` naming the file for damaged content."""
    message = str(error)
    if isinstance(error, pickle.UnpicklingError):
        refused = _REFUSED_GLOBAL.search(message)
        if refused:
            return UntrustedCheckpointError(path, refused.group(1) or refused.group(2), message)
    detail = message.splitlines()[0] if message else type(error).__name__
    return CheckpointReadError(
        path,
        f'checkpoint {path} is not a readable torch checkpoint (truncated or corrupted?): '
        f'{type(error).__name__}: {detail}',
    )
