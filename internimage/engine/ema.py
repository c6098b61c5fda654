"""EMA of the weights updated once per optimizer step, as the official trainer does."""

from typing import Optional

from mmengine.hooks import EMAHook
from mmengine.hooks.hook import DATA_BATCH
from mmengine.registry import HOOKS

__all__ = ['OptimizerStepEMAHook']


@HOOKS.register_module()
class OptimizerStepEMAHook(EMAHook):
    """:class:`mmengine.hooks.EMAHook` that averages only after iterations in which the
    optimizer stepped.

    mmengine's hook averages after every iteration. With gradient accumulation
    (``optim_wrapper.accumulative_counts = n``) the weights change only every ``n``
    iterations, so the average would take ``n`` identical samples per step and a momentum
    ``m`` would act as ``1 - (1 - m) ** n`` per step. The official classification trainer
    (``classification/main.py``) updates its EMA after each ``optimizer.step()``; this
    hook does the same, so ``momentum=1e-4`` is the official decay 0.9999 per step with
    any accumulation. Without accumulation it equals ``EMAHook``.

    Whether the optimizer stepped is the optim wrapper's ``should_update()`` after the
    iteration's ``update_params`` (true on every ``n``-th iteration and on the last one).
    Arguments are ``EMAHook``'s.
    """

    def after_train_iter(
        self,
        runner,
        batch_idx: int,
        data_batch: DATA_BATCH = None,
        outputs: Optional[dict] = None,
    ) -> None:
        """Average the weights if this iteration ended with an optimizer step.

        Args:
            runner (Runner): The runner of the training process.
            batch_idx (int): Index of the batch in the epoch.
            data_batch (dict or list, optional): The batch. Unused.
            outputs (dict, optional): The model's outputs. Unused.
        """
        should_update = getattr(runner.optim_wrapper, 'should_update', None)
        if should_update is None:
            raise TypeError(
                f'{type(self).__name__} needs an optim wrapper with should_update() '
                f'(mmengine OptimWrapper); got {type(runner.optim_wrapper).__name__}'
            )
        if should_update():
            super().after_train_iter(runner, batch_idx, data_batch, outputs)
