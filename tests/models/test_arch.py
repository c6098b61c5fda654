"""InternImage architecture: parameter counts per variant, structure, shapes, bad input."""

import pytest
import torch

from internimage import InternImage
from internimage.models import InternImageAttnPoolClsHead, InternImageClsHead
from tests.models.official_keys import TINY_ARCH, official_backbone_shapes, use_reference_op

# Millions of parameters with a 1000-class head, counted from the official code
# (docs/architecture.md).
OFFICIAL_PARAMS_M = {
    't': 29.92,
    's': 50.08,
    'b': 97.46,
    'l': 223.33,
    'xl': 334.82,
    'h': 1089.64,
    'g': 3076.37,
}


@pytest.mark.parametrize('arch', list(OFFICIAL_PARAMS_M))
def test_param_count_with_cls_head(arch):
    with torch.device('meta'):  # no memory, no init cost, even for the 3B-parameter G
        backbone = InternImage(arch=arch)
        head_type = InternImageAttnPoolClsHead if arch in ('h', 'g') else InternImageClsHead
        head = head_type(num_classes=1000, in_channels=backbone.num_features[-1])
    count = sum(p.numel() for m in (backbone, head) for p in m.parameters()) / 1e6
    assert count == pytest.approx(OFFICIAL_PARAMS_M[arch], rel=0.01)


@pytest.mark.parametrize('arch', list(OFFICIAL_PARAMS_M))
def test_backbone_keys_match_official_layout(arch):
    settings = InternImage.arch_settings[arch]
    expected = official_backbone_shapes(
        settings['channels'],
        settings['depths'],
        settings['groups'],
        layer_scale=settings.get('layer_scale') is not None,
        post_norm=settings.get('post_norm', False),
        res_post_norm=settings.get('res_post_norm', False),
        dw_kernel_size=settings.get('dw_kernel_size') or 3,
        center_feature_scale=settings.get('center_feature_scale', False),
        level2_post_norm_block_ids=settings.get('level2_post_norm_block_ids'),
    )
    with torch.device('meta'):
        backbone = InternImage(arch=arch)
    ours = {k: tuple(v.shape) for k, v in backbone.state_dict().items()}
    assert ours == dict(expected)


@pytest.mark.parametrize('out_indices', [(0,), (1,), (2,), (3,), (0, 1, 2, 3), (1, 3), (-1,)])
def test_out_indices_shapes(out_indices, tiny_internimage):
    model = tiny_internimage(out_indices=out_indices).eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, 64, 96))
    assert isinstance(outs, tuple) and len(outs) == len(out_indices)
    for out, index in zip(outs, out_indices):
        stage = index % 4
        assert out.shape == (2, 16 * 2**stage, 64 // 2 ** (stage + 2), 96 // 2 ** (stage + 2))
        assert out.is_contiguous()
    assert model.out_channels == [16 * 2 ** (i % 4) for i in out_indices]


def test_odd_input_size(tiny_internimage):
    model = tiny_internimage().eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 37, 53))
    # each stride-2 conv (kernel 3, pad 1) maps n -> ceil(n / 2)
    assert [tuple(o.shape[2:]) for o in outs] == [(10, 14), (5, 7), (3, 4), (2, 2)]


def test_large_model_extras_reduced():
    """H-style (res-post-norm, dw 5, stage-3 post-norms, centre feature scale) runs."""
    arch = dict(
        TINY_ARCH,
        depths=[1, 1, 6, 1],
        dw_kernel_size=5,
        res_post_norm=True,
        level2_post_norm_block_ids=[1, 5],
        center_feature_scale=True,
    )
    backbone = InternImage(arch=arch, out_indices=(2, 3), use_reference=use_reference_op())
    head = InternImageAttnPoolClsHead(
        num_classes=5, in_channels=128, embed_dim=32, num_heads=4, out_dim=24
    )
    with torch.no_grad():
        logits = head(backbone(torch.randn(2, 3, 64, 64)))
    assert logits.shape == (2, 5)
    assert backbone.levels[2].blocks[0].dcn.dw_conv[0].kernel_size == (5, 5)
    assert hasattr(backbone.levels[3], 'norm')  # kept with centre feature scale


def test_block_residual_forms():
    """Each block form computes its residual formula, per branch ``f`` with norm ``n``:
    pre-norm ``x + g * f(n(x))``, post-norm ``x + g * n(f(x))``, res-post-norm
    ``x + rpn(f(n(x)))`` (``g`` the layer-scale vector; docs/architecture.md)."""
    torch.manual_seed(0)
    x = torch.randn(1, 4, 4, 16)
    for form in ('pre', 'post', 'res_post'):
        arch = dict(
            TINY_ARCH,
            layer_scale=0.5 if form != 'res_post' else None,
            post_norm=form == 'post',
            res_post_norm=form == 'res_post',
        )
        block = InternImage(arch=arch, use_reference=use_reference_op()).levels[0].blocks[0].eval()
        for p in block.parameters():  # non-trivial norms and offsets
            p.data.add_(0.1 * torch.randn_like(p))
        with torch.no_grad():
            if form == 'pre':
                y = x + block.gamma1 * block.dcn(block.norm1(x))
                y = y + block.gamma2 * block.mlp(block.norm2(y))
            elif form == 'post':
                y = x + block.gamma1 * block.norm1(block.dcn(x))
                y = y + block.gamma2 * block.norm2(block.mlp(y))
            else:
                y = x + block.res_post_norm1(block.dcn(block.norm1(x)))
                y = y + block.res_post_norm2(block.mlp(block.norm2(y)))
            torch.testing.assert_close(block(x), y)


def test_stage_norm_presence():
    with torch.device('meta'):
        t, s, g = InternImage('t'), InternImage('s'), InternImage('g')
    assert all(hasattr(level, 'norm') for level in t.levels)
    assert not any(hasattr(level, 'norm') for level in s.levels)
    assert all(hasattr(level, 'norm') for level in g.levels)  # post-norm + centre scale


def test_init_and_layer_scale_override(tiny_internimage):
    model = tiny_internimage(layer_scale=1.0, drop_path_rate=0.3)
    block = model.levels[2].blocks[1]
    assert torch.equal(block.gamma1, torch.ones(64))
    assert torch.count_nonzero(block.dcn.offset.weight) == 0
    assert torch.count_nonzero(block.dcn.mask.bias) == 0
    assert block.mlp.fc1.weight.std().item() == pytest.approx(0.02, rel=0.2)
    rates = [
        b.drop_path.drop_prob if hasattr(b.drop_path, 'drop_prob') else 0.0
        for level in model.levels
        for b in level.blocks
    ]
    assert rates == pytest.approx([0.0, 0.075, 0.15, 0.225, 0.3])
    # model-level init (e.g. a classifier's trunc-normal Linears) cannot clobber DCNv3's zeros
    torch.nn.init.normal_(block.dcn.offset.weight)
    model.init_weights()
    assert torch.count_nonzero(block.dcn.offset.weight) == 0


def test_named_archs_settings():
    with torch.device('meta'):
        s = InternImage('s')
        l_model = InternImage('l', offset_scale=1.5)
    assert s.levels[0].blocks[0].gamma1.shape == (80,)
    assert l_model.levels[1].blocks[0].dcn.offset_scale == 1.5
    assert InternImage.arch_settings['l']['offset_scale'] == 2.0


@pytest.mark.parametrize(
    'kwargs, match',
    [
        (dict(arch='huge'), 'arch must be one of'),
        (dict(arch=dict(channels=16, depths=[1, 1, 1, 1])), 'missing keys'),
        (dict(arch=dict(TINY_ARCH, foo=1)), 'unknown keys'),
        (dict(arch=dict(TINY_ARCH, depths=[1, 1, 1])), 'depths must have 4'),
        (dict(arch=dict(TINY_ARCH, groups=[3, 2, 4, 8])), 'groups'),
        (dict(out_indices=(4,)), 'out_indices'),
        (dict(frozen_stages=5), 'frozen_stages'),
        (dict(drop_path_rate=1.5), 'drop_path_rate'),
        (dict(arch=dict(TINY_ARCH, post_norm=True, res_post_norm=True)), 'exclusive'),
    ],
)
def test_bad_arguments(kwargs, match):
    kwargs.setdefault('arch', dict(TINY_ARCH))
    with pytest.raises(ValueError, match=match):
        InternImage(**kwargs)


def test_bad_input(tiny_internimage):
    with pytest.raises(ValueError, match='NCHW'):
        tiny_internimage()(torch.randn(3, 32, 32))
