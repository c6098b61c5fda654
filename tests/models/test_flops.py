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


def test_tiny_total_is_dense_plus_core():
    model = InternImage(arch=dict(TINY_ARCH), use_reference=use_reference_op())
    result = count_flops(model, INPUT)
    assert result['total'] == result['dense'] + result['deformable_core']
    assert result['params'] == sum(p.numel() for p in model.parameters())
    # the stem's first conv alone: 8 out x 3 in x 9 taps x 32 x 32 pixels
    assert result['dense'] > 8 * 3 * 9 * 32 * 32
    assert model.training  # mode restored


def test_internimage_t_224_near_published():
    cfg = Config.fromfile(ROOT / 'configs' / 'classification' / 'internimage-t_8xb128_in1k.py')
    if use_reference_op():
        cfg.merge_from_dict({'model.backbone.use_reference': True})
    result = count_flops(build_counted_model(cfg), (torch.randn(1, 3, 224, 224),))
    assert result['total'] / 1e9 == pytest.approx(5.0, rel=0.05)  # published: 5 G
    assert result['params'] / 1e6 == pytest.approx(29.92, rel=0.01)
