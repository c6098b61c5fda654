"""The mmengine behaviour RandomStateHook leans on: a resumed ``IterBasedTrainLoop`` replays
the batches already trained through ``loop.dataloader_iterator`` after ``before_train``.

:func:`internimage.engine.hooks.restore_after_resume_replay` restores the random generators
after that replay; this test runs mmengine's Runner on a toy model and checks that the restore
lands exactly between the replayed batches and the first new one. It fails when mmengine
changes the replay (then the hook must follow).
"""

import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

from internimage.engine.hooks import restore_after_resume_replay

SAVED_AT = 2


class _Toy(BaseModel):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = (self.weight * inputs.float()).sum()
        return {'loss': out} if mode == 'loss' else out


# What happened, in order: sample reads (their index) and restores. Module-level because the
# Runner deep-copies its dataloader config, dataset included.
EVENTS = []


class _Logged(Dataset):
    """Sample i is {'inputs': i}; every read is appended to ``EVENTS``."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> dict:
        EVENTS.append(index)
        return {'inputs': index}


class _Probe(Hook):
    def __init__(self) -> None:
        self.trained = []

    def before_train(self, runner) -> None:
        restore_after_resume_replay(runner, lambda: EVENTS.append('restore'))

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self.trained.append(int(data_batch['inputs'][0]))


def _runner(work_dir, name, max_iters, probe=None, resume=False):
    return Runner(
        model=_Toy(),
        work_dir=str(work_dir),
        experiment_name=name,
        train_dataloader=dict(
            dataset=_Logged(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=1,
            num_workers=0,
            collate_fn=dict(type='default_collate'),
        ),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=SAVED_AT, by_epoch=False)
        ),
        custom_hooks=[probe] if probe is not None else None,
        resume=resume,
        log_level='WARNING',
    )


def test_resumed_loop_replays_through_its_iterator_before_the_first_new_batch(tmp_path):
    _runner(tmp_path, 'replay_first', SAVED_AT).train()

    EVENTS.clear()
    probe = _Probe()
    _runner(tmp_path, 'replay_resumed', SAVED_AT + 2, probe, resume=True).train()
    # Samples 0 and 1 replayed, then the restore, then the batches trained on.
    assert EVENTS == [0, 1, 'restore', 2, 3]
    assert probe.trained == [2, 3]


def test_fresh_run_restores_at_once(tmp_path):
    EVENTS.clear()
    probe = _Probe()
    _runner(tmp_path, 'fresh', 1, probe).train()
    assert EVENTS == ['restore', 0]
    assert probe.trained == [0]
