"""InternImageFSDPStrategy refuses what it cannot clip globally (one process, gloo).

That it clips by the global norm on two ranks is tested in test_distributed.py
(``test_fsdp_clips_by_the_global_gradient_norm``).
"""

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

from internimage.engine import InternImageFSDPStrategy


@pytest.fixture
def fsdp_linear():
    dist.init_process_group('gloo', store=dist.HashStore(), rank=0, world_size=1)
    try:
        yield FSDP(nn.Linear(3, 2), device_id=torch.device('cpu'), use_orig_params=True)
    finally:
        dist.destroy_process_group()


def _wrapper(**clip_grad) -> dict:
    return dict(optimizer=dict(type='SGD', lr=0.1), clip_grad=clip_grad)


def test_norm_clipping_goes_through_fsdp(fsdp_linear):
    wrapper = InternImageFSDPStrategy().build_optim_wrapper(_wrapper(max_norm=1.0), fsdp_linear)
    assert wrapper.clip_func.args == (fsdp_linear,)


def test_refuses_clip_options_fsdp_does_not_take(fsdp_linear):
    with pytest.raises(ValueError, match='foreach'):
        InternImageFSDPStrategy().build_optim_wrapper(
            _wrapper(max_norm=1.0, foreach=True), fsdp_linear
        )


def test_refuses_a_model_that_is_not_fsdp(fsdp_linear):
    with pytest.raises(TypeError, match='FSDP root'):
        InternImageFSDPStrategy().build_optim_wrapper(_wrapper(max_norm=1.0), nn.Linear(3, 2))
