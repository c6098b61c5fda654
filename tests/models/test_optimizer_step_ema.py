"""OptimizerStepEMAHook averages once per optimizer step, as the official trainer.

A real mmengine ``OptimWrapper`` with gradient accumulation drives a linear model; the
expected average is computed by hand from the weights after each optimizer step: the
first step's weights (mmengine's EMA starts from its first sample), then
``ema = (1 - m) * ema + m * w`` per step.
"""

from types import SimpleNamespace

import pytest
import torch
from mmengine.hooks import EMAHook
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner
from torch import nn

from internimage.engine import OptimizerStepEMAHook

MOMENTUM = 0.25  # large, so that one extra or missing update shows


def _train(hook, accumulate: int, iters: int):
    """Run ``iters`` iterations; return the hook's EMA weight and the weights after each
    optimizer step."""
    torch.manual_seed(0)
    model = nn.Linear(3, 1, bias=False)
    wrapper = OptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.5), accumulative_counts=accumulate
    )
    wrapper.initialize_count_status(model, 0, iters)
    runner = SimpleNamespace(model=model, optim_wrapper=wrapper, iter=0, epoch=0)
    hook.before_run(runner)
    stepped = []
    for it in range(iters):
        runner.iter = it
        before = model.weight.detach().clone()
        loss = model(torch.randn(4, 3)).pow(2).mean()
        wrapper.update_params(loss)
        if not torch.equal(before, model.weight):
            stepped.append(model.weight.detach().clone())
        hook.after_train_iter(runner, it)
    return hook.ema_model.module.weight.detach(), stepped, hook.ema_model.steps.item()


def _hand_ema(samples):
    ema = samples[0].clone()
    for w in samples[1:]:
        ema = (1 - MOMENTUM) * ema + MOMENTUM * w
    return ema


@pytest.mark.parametrize('accumulate, iters, steps', [(3, 9, 3), (3, 7, 3), (1, 4, 4)])
def test_averages_once_per_optimizer_step(accumulate, iters, steps):
    ema, stepped, updates = _train(OptimizerStepEMAHook(momentum=MOMENTUM), accumulate, iters)
    assert len(stepped) == steps  # 7 iterations of 3: steps after 3, 6 and the last
    assert updates == steps
    torch.testing.assert_close(ema, _hand_ema(stepped), rtol=0, atol=1e-7)


def test_mmengine_hook_counts_micro_batches():
    """Why the subclass: mmengine's hook averages the unchanged weights on every
    micro-batch, which is not the per-step decay."""
    ema, stepped, updates = _train(EMAHook(momentum=MOMENTUM), 3, 9)
    assert updates == 9
    assert not torch.allclose(ema, _hand_ema(stepped), atol=1e-4)


def test_needs_an_optim_wrapper_that_counts():
    hook = OptimizerStepEMAHook(momentum=MOMENTUM)
    runner = SimpleNamespace(model=nn.Linear(1, 1), optim_wrapper=object(), iter=0, epoch=0)
    hook.before_run(runner)
    with pytest.raises(TypeError, match='should_update'):
        hook.after_train_iter(runner, 0)


class _ToyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return dict(loss=self.linear(inputs).pow(2).mean())


def test_runner_builds_it_from_a_config_entry(tmp_path):
    """Through mmengine's Runner, by its config name in the mmpretrain scope (as the
    classification configs give it): 7 iterations of 3 accumulated make 3 steps, 3
    updates."""
    dataset = [dict(inputs=torch.randn(3)) for _ in range(7)]
    runner = Runner(
        model=_ToyModel(),
        work_dir=str(tmp_path),
        train_dataloader=dict(
            dataset=dataset,
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=1,
            collate_fn=dict(type='default_collate'),
        ),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1), accumulative_counts=3),
        train_cfg=dict(by_epoch=False, max_iters=7),
        custom_hooks=[dict(type='OptimizerStepEMAHook', momentum=1e-4, priority='ABOVE_NORMAL')],
        default_scope='mmpretrain',
        default_hooks=dict(checkpoint=None, logger=None),
    )
    runner.train()
    (hook,) = [h for h in runner.hooks if isinstance(h, OptimizerStepEMAHook)]
    assert hook.ema_model.steps.item() == 3
