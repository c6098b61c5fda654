"""FLOPs as published: dense MACs + 5*H*W*K*C per DCNv3 layer; InternImage-T ~ 5 G."""

import os.path as osp
import sys
from pathlib import Path

import pytest
import torch

from internimage import InternImage
from internimage.analysis import count_flops, dcnv3_core_flops
from tests.models.official_keys import TINY_ARCH, use_reference_op

ROOT = str(Path(__file__).resolve().parents[2])  # the repository


def test_dcnv3_core_formula_by_hand():
    model = InternImage(
        arch=dict(TINY_ARCH, remove_center=True), use_reference=use_reference_op()
    ).eval()
    # 64x64 input: stages at 16, 8, 4, 2 pixels with 16, 32, 64, 128 channels, depths 1,1,2,1;
    # remove_center leaves 8 sampling points.
    expected = sum(
        5 * side * side * 8 * channels * depth
        for side, channels, depth in ((16, 16, 1), (8, 32, 1), (4, 64, 2), (2, 128, 1))
    )
    assert dcnv3_core_flops(model, (torch.randn(1, 3, 64, 64),)) == expected


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
    result = count_flops(model, (torch.randn(1, 3, 64, 64),))
    assert result['dense'] == tiny_dense_macs_by_hand(64)
    assert result['total'] == result['dense'] + result['dcnv3_core']
    assert result['params'] == sum(p.numel() for p in model.parameters())
    assert model.training  # mode restored


def test_internimage_t_224_near_published(capsys):
    sys.path.insert(0, osp.join(ROOT, 'tools'))
    try:
        import get_flops
    finally:
        sys.path.pop(0)
    config = osp.join(ROOT, 'configs', 'classification', 'internimage-t_8xb128_in1k.py')
    options = ['model.backbone.use_reference=True'] if use_reference_op() else []
    result = get_flops.main(
        [config, '--shape', '224', '224'] + (['--cfg-options', *options] if options else [])
    )
    assert result['total'] / 1e9 == pytest.approx(5.0, rel=0.05)  # published: 5 G
    assert result['params'] / 1e6 == pytest.approx(29.92, rel=0.01)
    assert 'FLOPs:' in capsys.readouterr().out
