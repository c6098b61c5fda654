"""The whole model under torch.compile on CPU (inductor), the way mmengine's ``compile``
config key runs it, against eager; and the channels-last conv weights (a speed change that
must not change values, shapes or checkpoint loading)."""

import copy

import pytest
import torch
from mmengine.optim import OptimWrapper
from mmpretrain.models import ImageClassifier
from mmpretrain.structures import DataSample
from torch import nn

from internimage import InternImage
from tests.models.official_keys import TINY_ARCH, use_reference_op


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def tiny_classifier() -> ImageClassifier:
    torch.manual_seed(0)
    model = ImageClassifier(
        backbone=InternImage(arch=dict(TINY_ARCH), use_reference=use_reference_op()),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=5,
            in_channels=TINY_ARCH['channels'] * 8,
            loss=dict(type='CrossEntropyLoss'),
        ),
    )
    model.init_weights()
    # Non-zero offsets and point weights, so the deformable sampling is exercised.
    for name, param in model.named_parameters():
        if name.endswith(('offset.weight', 'mask.weight')):
            nn.init.normal_(param, std=0.1)
    return model


@pytest.mark.slow  # inductor compiles the model: ~40 s on 2 cores
def test_inference_compiles_fullgraph():
    eager = tiny_classifier().eval()
    compiled = torch.compile(copy.deepcopy(eager), fullgraph=True)  # a graph break raises
    images = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(
            compiled(images, mode='tensor'), eager(images, mode='tensor'), atol=1e-4, rtol=1e-4
        )


@pytest.mark.slow  # forward and backward graphs: ~3 min on 2 cores
def test_training_step_compiled_as_mmengine_does():
    """mmengine's Runner with ``compile=True`` replaces ``model.train_step`` by
    ``torch.compile(model.train_step)``; one step must give eager's loss and parameters."""
    eager = tiny_classifier().train()
    compiled = copy.deepcopy(eager)
    compiled.train_step = torch.compile(compiled.train_step)
    images = torch.randn(2, 3, 64, 64)
    data = dict(inputs=images, data_samples=[DataSample().set_gt_label(label) for label in (1, 3)])
    results = []
    for model in (eager, compiled):
        wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
        losses = model.train_step(copy.deepcopy(data), wrapper)
        results.append((losses['loss'].detach(), dict(model.named_parameters())))
    (eager_loss, eager_params), (compiled_loss, compiled_params) = results
    torch.testing.assert_close(compiled_loss, eager_loss, atol=1e-5, rtol=1e-5)
    moved = 0
    for name, param in eager_params.items():
        torch.testing.assert_close(compiled_params[name], param, atol=1e-5, rtol=1e-4)
        moved += int(not torch.equal(param, tiny_classifier().state_dict()[name]))
    assert moved > 0  # the step did update parameters


@pytest.mark.slow  # inductor compiles the model: ~40 s on 2 cores
def test_bfloat16_inference_compiled_with_freezing():
    """The CPU bfloat16 fast path of docs/inference.md: bfloat16 weights, torch.compile with
    inductor's freezing. The compiled forward keeps our op in the graph, runs the linears as
    oneDNN kernels on packed weights (what freezing buys) and stays within bfloat16 rounding
    of the float32 eager model."""
    from torch._inductor import config as inductor_config
    from torch.profiler import profile

    reference = tiny_classifier().eval()
    model = copy.deepcopy(reference).to(torch.bfloat16)
    compiled = torch.compile(model, fullgraph=True)
    images = torch.randn(2, 3, 64, 64)
    with torch.inference_mode(), inductor_config.patch(freezing=True):
        want = reference(images, mode='tensor')
        eager = model(images.bfloat16(), mode='tensor').float()
        got = compiled(images.bfloat16(), mode='tensor').float()
        with profile() as prof:
            compiled(images.bfloat16(), mode='tensor')
    scale = want.abs().max()
    assert (got - want).abs().max() / scale < 2e-2
    assert (eager - want).abs().max() / scale < 2e-2
    ops = {event.key for event in prof.key_averages()}
    # Inductor packs bfloat16 linears only where oneDNN has bfloat16 kernels for the CPU
    # (AVX-512 and up); elsewhere they stay ATen matrix products.
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        assert 'mkldnn::_linear_pointwise' in ops, sorted(ops)
        assert not {'aten::addmm', 'aten::mm'} & ops, sorted(ops)
    if not use_reference_op():
        assert 'ops_dcnv3::dcnv3_forward' in ops, sorted(ops)
