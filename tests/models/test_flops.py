"""FLOPs as published: dense MACs + 5*H*W*K*C per DCNv3 / DCNv4 layer; InternImage-T ~ 5 G."""

from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from internimage import FlashInternImage, InternImage
from internimage.analysis import build_counted_model, count_flops, deformable_core_flops
from tests.models.official_keys import TINY_ARCH, use_reference_op

ROOT = Path(__file__).resolve().parents[2]  # the repository
INPUT = (torch.randn(1, 3, 64, 64),)


def _by_hand(num_points: int) -> int:
    """64x64 input: stages at 16, 8, 4, 2 pixels with 16, 32, 64, 128 channels, depths
    1, 1, 2, 1 (TINY_ARCH); 5 MACs per sampled value and point."""
    return sum(
        5 * side * side * num_points * channels * depth
        for side, channels, depth in ((16, 16, 1), (8, 32, 1), (4, 64, 2), (2, 128, 1))
    )


def test_dcnv3_core_formula_by_hand():
    model = InternImage(
        arch=dict(TINY_ARCH, remove_center=True), use_reference=use_reference_op()
    ).eval()
    # remove_center leaves 8 sampling points.
    assert deformable_core_flops(model, INPUT) == _by_hand(8)


def test_dcnv4_core_formula_by_hand():
    model = FlashInternImage(arch=dict(TINY_ARCH), use_reference=use_reference_op()).eval()
    assert deformable_core_flops(model, INPUT) == _by_hand(9)
    result = count_flops(model, INPUT)
    assert result['deformable_core'] == _by_hand(9)
    assert result['total'] == result['dense'] + _by_hand(9)


def tiny_dense_macs_by_hand(side: int) -> int:
    """Dense MACs of ``TINY_ARCH`` (channels 16, depths 1,1,2,1, groups 1,2,4,8, 3x3
    kernels, MLP ratio 4) on one ``side`` x ``side`` image, counted layer by layer with the
    counter's rules: a conv or linear costs (output elements) x (inputs per output; no
    bias), a LayerNorm 5 per element (mean, variance, normalise, scale, shift); activations,
    softmax and residual adds are free; the DCNv3 core is counted apart.
    """
    taps = 9  # 3x3 convs and 3x3 sampling grids alike
    pixels = (side // 2) ** 2
    stem = 8 * pixels * 3 * taps + 5 * 8 * pixels  # conv1 3->8 stride 2, LN
    pixels //= 4
    stem += 16 * pixels * 8 * taps + 5 * 16 * pixels  # conv2 8->16 stride 2, LN
    total = stem
    channels = 16
    for depth, group in zip((1, 1, 2, 1), (1, 2, 4, 8)):
        c = channels
        block = (
            5 * c  # norm1
            + c * c  # dcn.input_proj
            + c * taps
            + 5 * c  # dcn.dw_conv: depthwise 3x3, LN
            + c * group * taps * 2  # dcn.offset: (dx, dy) per group and point
            + c * group * taps  # dcn.mask: one logit per group and point
            + c * c  # dcn.output_proj
            + 5 * c  # norm2
            + c * 4 * c
            + 4 * c * c  # mlp.fc1, mlp.fc2
        )
        total += depth * block * pixels + 5 * c * pixels  # blocks, the stage's closing LN
        if channels < 128:  # downsample: 3x3 stride-2 conv c->2c without bias, LN
            pixels //= 4
            total += 2 * c * pixels * c * taps + 5 * 2 * c * pixels
            channels *= 2
    return total


def test_tiny_dense_macs_match_a_hand_count():
    model = InternImage(arch=dict(TINY_ARCH), use_reference=use_reference_op())
    result = count_flops(model, INPUT)
    assert result['dense'] == tiny_dense_macs_by_hand(64)
    assert result['total'] == result['dense'] + result['deformable_core']
    assert result['params'] == sum(p.numel() for p in model.parameters())
    assert model.training  # mode restored


def test_internimage_t_224_near_published():
    cfg = Config.fromfile(ROOT / 'configs' / 'classification' / 'internimage-t_8xb128_in1k.py')
    if use_reference_op():
        cfg.merge_from_dict({'model.backbone.use_reference': True})
    result = count_flops(build_counted_model(cfg), (torch.randn(1, 3, 224, 224),))
    assert result['total'] / 1e9 == pytest.approx(5.0, rel=0.05)  # published: 5 G
    assert result['params'] / 1e6 == pytest.approx(29.92, rel=0.01)
