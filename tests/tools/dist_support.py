"""Config writer and hooks for the multi-process and resume tests.

Imported by the test configs through ``custom_imports``, so each training process
(every torchrun rank) registers the hooks.
"""

import os
import resource
import signal
from pathlib import Path
from typing import Optional

import torch
from mmengine.dataset import pseudo_collate
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from torch.distributed.fsdp import FullStateDictConfig, StateDictType
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

from internimage.datasets import QuickstartSpec, make_quickstart_data

ROOT = Path(__file__).resolve().parents[2]
CLS_CONFIG = ROOT / 'configs/quickstart/internimage-tiny_quickstart_cls.py'


def _params(runner) -> dict:
    """The full (unsharded) state dict, on every rank."""
    if isinstance(runner.model, FSDP):
        gathered = FullStateDictConfig(offload_to_cpu=False, rank0_only=False)
        with FSDP.state_dict_type(runner.model, StateDictType.FULL_STATE_DICT, gathered):
            return runner.model.state_dict()
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    return model.state_dict()


def _local_state_bytes(runner) -> int:
    """Bytes of the parameters and optimizer state this rank holds (its shards under
    FSDP, full copies under DDP)."""
    tensors = list(runner.model.parameters())
    for state in runner.optim_wrapper.optimizer.state.values():
        tensors += [value for value in state.values() if torch.is_tensor(value)]
    return sum(tensor.numel() * tensor.element_size() for tensor in tensors)


def _whole_train_set_loss(runner) -> float:
    """The model's loss on every training sample as one batch, without an update (the
    pipeline must be deterministic; DDP or a plain model, not FSDP)."""
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    dataset = runner.train_dataloader.dataset
    batch = pseudo_collate([dataset[i] for i in range(len(dataset))])
    with torch.no_grad():
        losses = model(**model.data_preprocessor(batch, False), mode='loss')
    return float(model.parse_losses(losses)[0])


@HOOKS.register_module()
class DumpRankStateHook(Hook):
    """Writes each rank's parameters and per-iteration losses to
    ``work_dir/rank{R}.pth`` at the end of training.

    Args:
        fixed_batch_loss (bool): Also write ``fixed_batch_losses``, the loss on the whole
            training set before and after training (the same batch both times). Defaults
            to False.
    """

    priority = 'LOWEST'

    def __init__(self, fixed_batch_loss: bool = False) -> None:
        self.losses = []
        self.grad_norms = []
        self.initial = {}
        self.fixed_batch_loss = fixed_batch_loss
        self.fixed_batch_losses = []

    def before_train(self, runner) -> None:
        self.initial = {name: value.detach().clone() for name, value in _params(runner).items()}
        if self.fixed_batch_loss:
            self.fixed_batch_losses.append(_whole_train_set_loss(runner))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.losses.append(float(outputs['loss']))
        if 'train/grad_norm' in runner.message_hub.log_scalars:  # logged when clipping
            self.grad_norms.append(runner.message_hub.get_scalar('train/grad_norm').current())

    def after_train(self, runner) -> None:
        if self.fixed_batch_loss:
            self.fixed_batch_losses.append(_whole_train_set_loss(runner))
        params = {name: value.detach().clone() for name, value in _params(runner).items()}
        memory = dict(
            state_bytes=_local_state_bytes(runner),
            max_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        )
        torch.save(
            dict(
                params=params,
                initial=self.initial,
                losses=self.losses,
                grad_norms=self.grad_norms,
                fixed_batch_losses=self.fixed_batch_losses,
                iter=runner.iter,
                memory=memory,
            ),
            Path(runner.work_dir) / f'rank{get_rank()}.pth',
        )


@HOOKS.register_module()
class KillAtIterHook(Hook):
    """SIGKILLs its own process once iteration ``iteration`` is done and its checkpoint
    written (lowest priority: after CheckpointHook)."""

    priority = 'LOWEST'

    def __init__(self, iteration: int) -> None:
        self.iteration = iteration

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 == self.iteration:
            os.kill(os.getpid(), signal.SIGKILL)


def make_cls_data(root: Path) -> Path:
    """Class folders of 32 px shapes: 4 train and 4 val images per class (12 each)."""
    spec = QuickstartSpec(
        num_train=1, num_val=1, image_size=32, cls_num_train=4, cls_num_val=4, cls_image_size=32
    )
    return make_quickstart_data(root, spec) / 'cls'


def write_cls_config(
    path: Path,
    data_root: Path,
    *,
    batch_size: int,
    max_iters: int,
    random_flip: bool,
    checkpoint_interval: Optional[int] = None,
    drop_path_rate: float = 0.0,
    with_cp: bool = False,
    extra: str = '',
) -> Path:
    """An iteration-based variant of the quick-start classifier: the H/G attention-pool
    head (LayerNorm only: no batch statistics, so data parallelism is exact up to
    float summation order), ``num_workers=0``, deterministic randomness."""
    flip = "dict(type='RandomFlip', prob=0.5, direction='horizontal'), " if random_flip else ''
    interval = checkpoint_interval or max_iters
    path.write_text(
        f"""_base_ = {str(CLS_CONFIG)!r}
custom_imports = dict(
    imports=['internimage', 'tests.tools.dist_support'], allow_failed_imports=False)
model = dict(
    backbone=dict(out_indices=(2, 3), drop_path_rate={drop_path_rate}, with_cp={with_cp}),
    head=dict(_delete_=True, type='InternImageAttnPoolClsHead', num_classes=3,
              in_channels=256, embed_dim=64, num_heads=4, out_dim=64,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1,)))
train_dataloader = dict(
    batch_size={batch_size}, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(data_root={str(data_root)!r},
                 pipeline=[dict(type='LoadImageFromFile'), {flip}dict(type='PackInputs')]))
val_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                      dataset=dict(data_root={str(data_root)!r}))
test_dataloader = val_dataloader
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters={max_iters},
                 val_interval={max_iters})
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
                        end={max_iters})]
optim_wrapper = dict(optimizer=dict(lr=3e-3))
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(by_epoch=False, interval={interval}, max_keep_ckpts=-1))
log_processor = dict(by_epoch=False)
custom_hooks = [dict(type='DumpRankStateHook')]
randomness = dict(seed=0, deterministic=True)
{extra}
"""
    )
    return path
