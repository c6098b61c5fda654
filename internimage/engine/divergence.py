"""Stop a run that diverges, naming the iteration and the last good checkpoint.

mmdet's ``CheckInvalidLossHook`` asserts on a NaN/inf loss, but only for detection
configs, every 50 iterations by default, and its message says neither where it happened
nor which checkpoint to go back to. :class:`StopOnDivergenceHook` serves the three tasks;
the tools add it to every run (:func:`internimage.apis.load_config`).
"""

import math
from typing import Any, Dict, Iterable, List, Optional, Tuple

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

__all__ = ['StopOnDivergenceHook', 'TrainingDivergedError']


class TrainingDivergedError(RuntimeError):
    """A NaN or infinite loss, gradient norm or weight stopped training.

    Attributes:
        iteration (int): The 1-based iteration that diverged.
        last_checkpoint (str | None): The last checkpoint written before it (kept).
    """

    def __init__(self, iteration: int, what: str, last_checkpoint: Optional[str]):
        self.iteration = iteration
        self.last_checkpoint = last_checkpoint
        where = (
            f'the last good checkpoint is {last_checkpoint} (kept; resume from it with '
            f'--resume {last_checkpoint} and a lower learning rate)'
            if last_checkpoint
            else 'no checkpoint was written before it'
        )
        super().__init__(f'training diverged at iteration {iteration}: {what}; {where}')


def _non_finite(values: Dict[str, Any]) -> Dict[str, float]:
    found = {}
    for name, value in values.items():
        number = float(value.detach() if torch.is_tensor(value) else value)
        if not math.isfinite(number):
            found[name] = number
    return found


def _local_values(tensor: torch.Tensor) -> torch.Tensor:
    """The values this process holds: the local shards of a sharded tensor (FSDP's sharded
    state dict holds ``ShardedTensor`` / ``DTensor``, which support no reductions), else the
    tensor itself."""
    if hasattr(tensor, 'local_shards'):  # ShardedTensor
        shards = [shard.tensor.flatten() for shard in tensor.local_shards()]
        return torch.cat(shards) if shards else tensor.new_zeros(0)
    if hasattr(tensor, 'to_local'):  # DTensor
        return tensor.to_local()
    return tensor


def _non_finite_tensors(named: Iterable[Tuple[str, torch.Tensor]]) -> List[str]:
    """Names of the floating-point tensors holding a NaN or inf: one float64 sum per tensor,
    added up per device, and one host sync per device when all are finite (a sum of float32
    values cannot overflow float64, so an inf total means an inf or NaN element)."""
    floating = [
        (n, _local_values(t.detach()))
        for n, t in named
        if torch.is_tensor(t) and t.is_floating_point()
    ]
    totals: Dict[torch.device, torch.Tensor] = {}
    for _, tensor in floating:
        partial = tensor.sum(dtype=torch.float64)
        totals[tensor.device] = (
            totals[tensor.device] + partial if tensor.device in totals else partial
        )
    if all(bool(torch.isfinite(total)) for total in totals.values()):
        return []
    return [name for name, tensor in floating if not tensor.isfinite().all()]


@HOOKS.register_module()
class StopOnDivergenceHook(Hook):
    """Raise :class:`TrainingDivergedError` when training produces a NaN or infinite value.

    Checked after every ``interval``-th iteration and after every epoch, before
    ``CheckpointHook`` (which may delete an older checkpoint before writing a new one) and
    ``LoggerHook``, so the diverged iteration writes nothing and the last checkpoint stays:

    * each logged ``loss*`` value;
    * the gradient norm, when the optimizer wrapper computes one (``clip_grad``; not
      under AMP, whose loss scaler skips steps with infinite gradients by design);
    * the model's weights (a NaN gradient shows there first).

    And a checkpoint about to be written with NaN or inf weights is refused
    (``before_save_checkpoint``), for saves outside the checked points.

    Args:
        interval (int): Check every this many iterations. Defaults to 1 (the weight check
            is one reduction per tensor; a larger interval saves that, but a checkpoint
            written between checks is then only guarded by ``before_save_checkpoint``).
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, interval: int = 1) -> None:
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'StopOnDivergenceHook interval must be an int >= 1, got {interval!r}')
        self.interval = interval
        self.last_saved: Optional[str] = None

    def before_train(self, runner) -> None:
        self.last_saved = runner.message_hub.get_info('last_ckpt')  # set when resuming

    @staticmethod
    def _grad_norm(runner) -> Dict[str, float]:
        if hasattr(runner.optim_wrapper, 'loss_scaler'):  # AMP: inf gradients are skipped
            return {}
        history = runner.message_hub.log_scalars.get('train/grad_norm')
        return {} if history is None else {'grad_norm': history.current()}

    def _check_weights(self, runner, iteration: int) -> None:
        bad = _non_finite_tensors(runner.model.named_parameters())
        if bad:
            what = f'{len(bad)} weight tensor(s) hold NaN or inf (e.g. {", ".join(bad[:3])})'
            raise TrainingDivergedError(iteration, what, self.last_saved)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self.every_n_train_iters(runner, self.interval):
            return
        losses = {k: v for k, v in (outputs or {}).items() if k.startswith('loss')}
        bad = _non_finite({**losses, **self._grad_norm(runner)})
        if bad:
            what = ', '.join(f'{name} = {value}' for name, value in bad.items())
            raise TrainingDivergedError(runner.iter + 1, what, self.last_saved)
        self._check_weights(runner, runner.iter + 1)

    def after_train_epoch(self, runner) -> None:
        self._check_weights(runner, runner.iter)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        bad = _non_finite_tensors(checkpoint.get('state_dict', {}).items())
        if bad:
            what = f'{len(bad)} weight tensor(s) hold NaN or inf (e.g. {", ".join(bad[:3])})'
            # mmengine's meta holds the iteration count the checkpoint stands for.
            iteration = checkpoint.get('meta', {}).get('iter', runner.iter)
            raise TrainingDivergedError(iteration, what, self.last_saved)
        # CheckpointHook names the file it is writing before it writes it.
        self.last_saved = runner.message_hub.get_info('last_ckpt')
