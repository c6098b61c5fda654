"""Hooks the tools add to every run."""

import random
from typing import Any, Callable, Dict, Iterator, Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

__all__ = [
    'RandomStateHook',
    'get_random_state',
    'set_random_state',
    'restore_after_resume_replay',
]

#: checkpoint key of the saved generator states.
RANDOM_STATE_KEY = 'random_state'


def get_random_state() -> Dict[str, Any]:
    """The states of python's, numpy's and torch's (CPU and CUDA) global generators, made
    of tuples, lists, numbers and tensors only so that ``torch.load(weights_only=True)``
    reads them back."""
    kind, keys, position, has_gauss, cached_gauss = np.random.get_state()
    state = dict(
        python=random.getstate(),
        numpy=(kind, keys.tolist(), position, has_gauss, cached_gauss),
        torch=torch.get_rng_state(),
    )
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: Dict[str, Any]) -> None:
    """Restore what :func:`get_random_state` returned."""
    version, internal, gauss_next = state['python']
    random.setstate((version, tuple(internal), gauss_next))
    kind, keys, position, has_gauss, cached_gauss = state['numpy']
    keys = np.asarray(keys, dtype=np.uint32)
    np.random.set_state((kind, keys, position, has_gauss, cached_gauss))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


class _RestoreAfterSkip:
    """Wraps the train loop's data iterator: after the ``skip`` batches a resumed
    ``IterBasedTrainLoop`` replays to reach its position, restore the generators, then
    fetch the first new batch (the replay's random augmentations would otherwise
    advance them past the saved point)."""

    def __init__(self, iterator: Iterator, skip: int, restore: Callable[[], None]) -> None:
        self._iterator = iterator
        self._skip = skip
        self._restore: Optional[Callable[[], None]] = restore

    def __iter__(self) -> '_RestoreAfterSkip':
        return self

    def __next__(self) -> Any:
        if self._skip > 0:
            self._skip -= 1
        elif self._restore is not None:
            self._restore()
            self._restore = None
        return next(self._iterator)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._iterator, name)


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Saves the global random generators in every checkpoint and restores them on resume.

    mmengine resumes the model, optimizer, schedulers, counters and the sampler's data
    order, but re-seeds the generators from the config's seed, so random augmentations
    and stochastic layers after a resume differ from an uninterrupted run. With this
    hook a resumed run reproduces it exactly on CPU (with ``num_workers=0``: worker
    processes seed their own generators from the base seed when they start).

    In a distributed run the checkpoint (written by rank 0) holds rank 0's states and
    every rank restores them: exact when the ranks' generators advance in lockstep
    (``randomness.diff_rank_seed=False``, the default, and augmentations drawing a fixed
    number of values per sample).
    """

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self._resumed_state: Optional[Dict[str, Any]] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[RANDOM_STATE_KEY] = get_random_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # Also called by load_from without resume: only a resume continues the stream.
        if runner.cfg.get('resume', False) and RANDOM_STATE_KEY in checkpoint:
            self._resumed_state = checkpoint[RANDOM_STATE_KEY]

    def before_train(self, runner) -> None:
        state, self._resumed_state = self._resumed_state, None
        if state is not None:
            restore_after_resume_replay(runner, lambda: set_random_state(state))


def restore_after_resume_replay(runner, restore: Callable[[], None]) -> None:
    """Calls ``restore`` right before the first batch a resumed run trains on.

    The one place that leans on mmengine's loop internals: ``IterBasedTrainLoop.run()``
    (mmengine 0.10.7) replays the ``runner.iter`` batches already trained, through
    ``loop.dataloader_iterator``, after the ``before_train`` hooks and before the first new
    batch; no hook runs in between. So the iterator is wrapped to call ``restore`` after that
    many batches (the replay's random augmentations would otherwise advance the generators
    past the saved point). Other loops, or a run at iteration 0, have no replay: ``restore``
    runs now. tests/tools/test_resume_replay.py fails if mmengine changes the replay.

    Args:
        runner (Runner): The runner, in ``before_train``.
        restore (callable): What to run before the first new batch.
    """
    loop = runner.train_loop
    iterator = getattr(loop, 'dataloader_iterator', None)
    if iterator is not None and runner.iter > 0:
        loop.dataloader_iterator = _RestoreAfterSkip(iterator, runner.iter, restore)
    else:
        restore()
