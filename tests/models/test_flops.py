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


def test_tiny_total_is_dense_plus_core():
    model = InternImage(arch=dict(TINY_ARCH), use_reference=use_reference_op())
    result = count_flops(model, (torch.randn(1, 3, 64, 64),))
    assert result['total'] == result['dense'] + result['dcnv3_core']
    assert result['params'] == sum(p.numel() for p in model.parameters())
    # the stem's first conv alone: 8 out x 3 in x 9 taps x 32 x 32 pixels
    assert result['dense'] > 8 * 3 * 9 * 32 * 32
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
