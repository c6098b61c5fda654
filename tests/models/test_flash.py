"""FlashInternImage: the official classification layout loads exactly; InternImage's contract.

The official key list is built here from the official model definition (OpenGVLab/DCNv4,
classification/models/flash_intern_image.py and DCNv4_op/DCNv4/modules/dcnv4.py), not from
our modules: stem, stages and downsampling as InternImage; each block's ``dcn`` is a DCNv4
module (``offset_mask_dw`` with a dw kernel, ``offset_mask`` padded to a multiple of 8,
``value_proj``, ``output_proj`` with a bias only with DCN_OUTPUT_BIAS); ``mlp.fc2`` has a bias
only with MLP_FC2_BIAS; the classifier is ``conv_head`` + ``head`` (cls_scale 1.5).
"""

import math
from collections import OrderedDict
from unittest import mock

import pytest
import torch
from mmengine.registry import MODELS

from internimage import FlashInternImage, InternImage
from ops_dcnv3 import DCNv4
from tests.models.official_keys import (
    assert_loads_exactly,
    official_cls_head_shapes,
    random_state_dict,
    use_reference_op,
)

# The official classification configs (classification/configs/flash_intern_image_*.yaml, with
# config.py's defaults for the keys they leave out).
OFFICIAL_CONFIGS = {
    't': dict(channels=64, depths=[4, 4, 18, 4], groups=[4, 8, 16, 32], layer_scale=None,
              offset_scale=1.0, post_norm=False, dw_kernel_size=None, dcn_output_bias=False,
              mlp_fc2_bias=False),
    's': dict(channels=80, depths=[4, 4, 21, 4], groups=[5, 10, 20, 40], layer_scale=1e-5,
              offset_scale=1.0, post_norm=True, dw_kernel_size=3, dcn_output_bias=False,
              mlp_fc2_bias=False),
    'b': dict(channels=112, depths=[4, 4, 21, 4], groups=[7, 14, 28, 56], layer_scale=1e-5,
              offset_scale=0.5, post_norm=True, dw_kernel_size=3, dcn_output_bias=False,
              mlp_fc2_bias=False),
    'l': dict(channels=160, depths=[5, 5, 22, 5], groups=[10, 20, 40, 80], layer_scale=1e-5,
              offset_scale=2.0, post_norm=True, dw_kernel_size=3, dcn_output_bias=True,
              mlp_fc2_bias=True),
}  # fmt: skip
# Small archs with the option combinations of T and of L, for real loads.
TINY_T = dict(channels=16, depths=[1, 1, 2, 1], groups=[1, 2, 4, 8])
TINY_L = dict(TINY_T, layer_scale=1e-5, offset_scale=2.0, post_norm=True, dw_kernel_size=3,
              dcn_output_bias=True, mlp_fc2_bias=True)  # fmt: skip


def official_flash_shapes(cfg: dict) -> 'OrderedDict[str, tuple]':
    """Key -> shape of the official FlashInternImage backbone for one config."""
    shapes = OrderedDict()
    channels, half = cfg['channels'], cfg['channels'] // 2

    def add(prefix, *shape, bias=True):
        shapes[f'{prefix}.weight'] = shape
        if bias:
            shapes[f'{prefix}.bias'] = shape[:1]

    add('patch_embed.conv1', half, 3, 3, 3)
    add('patch_embed.norm1.1', half)  # build_norm_layer: [to_channels_last, LayerNorm, ...]
    add('patch_embed.conv2', channels, half, 3, 3)
    add('patch_embed.norm2.1', channels)
    for i, (depth, group) in enumerate(zip(cfg['depths'], cfg['groups'])):
        dim = channels * 2**i
        for j in range(depth):
            block = f'levels.{i}.blocks.{j}'
            add(f'{block}.norm1.0', dim)
            if cfg['dw_kernel_size'] is not None:
                k = cfg['dw_kernel_size']
                add(f'{block}.dcn.offset_mask_dw', dim, 1, k, k)
            add(f'{block}.dcn.offset_mask', int(math.ceil(group * 9 * 3 / 8) * 8), dim)
            add(f'{block}.dcn.value_proj', dim, dim)
            add(f'{block}.dcn.output_proj', dim, dim, bias=cfg['dcn_output_bias'])
            add(f'{block}.norm2.0', dim)
            add(f'{block}.mlp.fc1', 4 * dim, dim)
            add(f'{block}.mlp.fc2', dim, 4 * dim, bias=cfg['mlp_fc2_bias'])
            if cfg.get('layer_scale') is not None:
                shapes[f'{block}.gamma1'] = (dim,)
                shapes[f'{block}.gamma2'] = (dim,)
        if not cfg.get('post_norm', False):
            add(f'levels.{i}.norm.0', dim)
        if i < 3:
            shapes[f'levels.{i}.downsample.conv.weight'] = (2 * dim, dim, 3, 3)
            add(f'levels.{i}.downsample.norm.1', 2 * dim)
    return shapes


def with_defaults(arch: dict) -> dict:
    return dict(dict(layer_scale=None, post_norm=False, dw_kernel_size=None,
                     dcn_output_bias=False, mlp_fc2_bias=False), **arch)  # fmt: skip


@pytest.mark.parametrize('arch', list(OFFICIAL_CONFIGS))
def test_arch_table_is_the_official_configs(arch):
    settings = FlashInternImage._parse_arch(arch)
    for key, value in OFFICIAL_CONFIGS[arch].items():
        assert settings[key] == value, key
    assert settings['core_op'] == 'DCNv4' and settings['mlp_ratio'] == 4.0


@pytest.mark.parametrize('arch', list(OFFICIAL_CONFIGS))
def test_state_dict_layout_is_the_official_one(arch):
    with torch.device('meta'):
        model = FlashInternImage(arch)
    actual = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = dict(official_flash_shapes(OFFICIAL_CONFIGS[arch]))
    assert sorted(set(actual) - set(expected)) == [], 'unexpected keys'
    assert sorted(set(expected) - set(actual)) == [], 'missing keys'
    assert actual == expected


def build(arch, path=None, **kwargs):
    init_cfg = dict(type='Pretrained', checkpoint=str(path)) if path else None
    return FlashInternImage(
        arch=dict(arch), init_cfg=init_cfg, use_reference=use_reference_op(), **kwargs
    )


@pytest.mark.parametrize('arch', [TINY_T, TINY_L], ids=['t-options', 'l-options'])
@pytest.mark.parametrize('layout', ['classification', 'detection'])
def test_official_checkpoint_loads_exactly(tmp_path, arch, layout):
    weights = random_state_dict(official_flash_shapes(with_defaults(arch)))
    if layout == 'classification':
        checkpoint = {'model': {**weights, **random_state_dict(official_cls_head_shapes(128, 10))}}
    else:
        checkpoint = {'state_dict': {f'backbone.{k}': v for k, v in weights.items()}}
    path = tmp_path / 'flash.pth'
    torch.save(checkpoint, path)
    model = build(arch, path)
    assert_loads_exactly(model, weights)
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 32, 32))[-1].shape == (1, 128, 1, 1)


def test_an_internimage_checkpoint_is_reported_loudly(tmp_path):
    """A DCNv3 (InternImage) file in a FlashInternImage: every DCNv4 key is named as missing
    and every DCNv3 key as unexpected."""
    path = tmp_path / 'internimage.pth'
    torch.save({'model': InternImage(arch=dict(TINY_T)).state_dict()}, path)
    with mock.patch('internimage.checkpoint.print_log') as log:
        build(TINY_T, path).init_weights()
    messages = ' '.join(str(c.args[0]) for c in log.call_args_list)
    assert 'levels.0.blocks.0.dcn.offset_mask.weight' in messages
    assert 'levels.0.blocks.0.dcn.input_proj.weight' in messages


def test_wrong_variant_raises_with_shapes(tmp_path):
    path = tmp_path / 'l.pth'
    torch.save({'model': random_state_dict(official_flash_shapes(with_defaults(TINY_L)))}, path)
    with pytest.raises(ValueError, match='mlp.fc2|offset_mask_dw|shape'):
        build(dict(TINY_L, channels=32), path).init_weights()


def test_registered_and_shares_the_internimage_contract():
    model = MODELS.build(
        dict(type='FlashInternImage', arch=dict(TINY_L), out_indices=(1, 3), frozen_stages=2)
    )
    assert isinstance(model, InternImage)
    assert all(isinstance(b.dcn, DCNv4) for level in model.levels for b in level.blocks)
    assert model.out_channels == [32, 128]
    outs = model(torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 32, 8, 8), (2, 128, 2, 2)]
    frozen = [model.patch_embed, model.levels[0], model.levels[1]]
    assert all(not p.requires_grad for m in frozen for p in m.parameters())
    assert all(p.requires_grad for p in model.levels[2].parameters())
    reference = InternImage(arch=dict(TINY_T))
    for name, _ in model.named_parameters():
        if name.startswith(('patch_embed', 'levels.1.norm', 'levels.2.blocks.1')):
            assert model.get_layer_depth(name, '') == reference.get_layer_depth(name, '')


@pytest.mark.needs_extension
def test_compiled_op_matches_reference_op():
    torch.manual_seed(0)
    compiled = FlashInternImage(arch=dict(TINY_L)).double().eval()
    for module in compiled.modules():
        if isinstance(module, DCNv4):  # non-zero offsets and weights
            torch.nn.init.normal_(module.offset_mask.weight, std=0.05)
    reference = FlashInternImage(arch=dict(TINY_L), use_reference=True).double().eval()
    reference.load_state_dict(compiled.state_dict())
    x = torch.randn(1, 3, 48, 40, dtype=torch.float64)
    for got, want in zip(compiled(x), reference(x)):
        torch.testing.assert_close(got, want, atol=1e-9, rtol=1e-9)
