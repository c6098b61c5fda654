"""CB-InternImage (CBNetV2 composite backbone): the composite forward is checked against
the official rule re-derived here from plain InternImages holding the same weights."""

import pytest
import torch
import torch.nn.functional as F

import internimage  # noqa: F401  (registers the models)
from internimage.models import CBInternImage, InternImage

TINY_H = dict(
    channels=32,
    depths=[1, 1, 2, 1],
    groups=[2, 4, 8, 16],
    dw_kernel_size=5,
    res_post_norm=True,
    level2_post_norm_block_ids=[1],
    center_feature_scale=True,
)


def _official_composite(backbone: CBInternImage, image: torch.Tensor):
    """The official CBInternImage forward, written from its definition: the lead branch is
    a plain InternImage with the assisting stem; before stage i it adds
    gamma_i * sum_j nearest(conv_ij(first[i + j])) sized (H/4 // 2**i, W/4 // 2**i)."""
    first = InternImage(TINY_H, out_indices=(0, 1, 2, 3))
    first.load_state_dict(backbone.cb_modules[0].state_dict())
    lead = InternImage(TINY_H, out_indices=(1, 2, 3))
    lead_state = {
        k[len('cb_modules.1.') :]: v
        for k, v in backbone.state_dict().items()
        if k.startswith('cb_modules.1.') and '.gamma' not in k[len('cb_modules.1.') :][:7]
    }
    lead_state.update(
        {f'patch_embed.{k}': v for k, v in backbone.cb_modules[0].patch_embed.state_dict().items()}
    )
    lead_state = {k: v for k, v in lead_state.items() if not k.startswith('gamma')}
    lead.load_state_dict(lead_state)
    first_out = first(image)  # NCHW, all 4 stages
    x = lead.patch_embed(image)
    h, w = x.shape[1:3]
    outs = []
    for i, level in enumerate(lead.levels):
        feed = 0
        for j in range(4 - i):
            conv = backbone.cb_linears[i][j]
            feed = feed + F.interpolate(conv(first_out[i + j]), size=(h, w), mode='nearest')
        gamma = getattr(backbone.cb_modules[1], f'gamma{i}')
        x = x + gamma * feed.permute(0, 2, 3, 1)
        out, x = level(x)
        outs.append(out.permute(0, 3, 1, 2))
        h, w = h // 2, w // 2
    return first_out[1:], tuple(outs[1:])


def test_cb_backbone_follows_the_official_composite_rule():
    torch.manual_seed(0)
    backbone = CBInternImage(TINY_H).eval()
    with torch.no_grad():
        for i in range(4):  # non-zero gates, so the connections matter
            getattr(backbone.cb_modules[1], f'gamma{i}').normal_()
    image = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        first, second = backbone(image)
        ref_first, ref_second = _official_composite(backbone, image)
    assert [f.shape[1] for f in second] == [64, 128, 256]
    for got, want in zip(first + second, ref_first + ref_second):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    # With the gates at their zero init the lead branch is the plain network.
    with torch.no_grad():
        for i in range(4):
            getattr(backbone.cb_modules[1], f'gamma{i}').zero_()
        _, second = backbone(image)
        _, ref_second = _official_composite(backbone, image)
    for got, want in zip(second, ref_second):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_cb_backbone_official_parameter_names():
    names = set(CBInternImage(TINY_H).state_dict())
    assert 'cb_modules.1.gamma3' in names and 'cb_linears.0.3.weight' in names
    assert not any(n.startswith('cb_modules.1.patch_embed') for n in names)
    # cb_linears[i][0] is an identity; i + j indexes the 4 stages.
    assert {n for n in names if n.startswith('cb_linears.')} == {
        f'cb_linears.{i}.{j}.{p}'
        for i in range(4)
        for j in range(1, 4 - i)
        for p in ('weight', 'bias')
    }


def test_cb_backbone_rejects_bad_out_indices():
    with pytest.raises(ValueError, match='out_indices\\[0\\]'):
        CBInternImage(TINY_H, out_indices=[(1, 2, 3), (1, 2, 3)])
    with pytest.raises(ValueError, match='2 branches'):
        CBInternImage(TINY_H, out_indices=[(0, 1, 2, 3)])
