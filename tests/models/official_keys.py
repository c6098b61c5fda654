"""Official InternImage checkpoint layouts, written from ``docs/checkpoints.md`` and the
released model definition, independently of our modules: the backbone tests load these.

Helper for tests/models/test_*.py (not a test module itself).
"""

from collections import OrderedDict
from typing import Dict, Optional, Sequence, Tuple
from unittest import mock

import torch

Shape = Tuple[int, ...]


def _ln(prefix: str, dim: int) -> Dict[str, Shape]:
    return {f'{prefix}.weight': (dim,), f'{prefix}.bias': (dim,)}


def _linear(prefix: str, cin: int, cout: int, bias: bool = True) -> Dict[str, Shape]:
    shapes = {f'{prefix}.weight': (cout, cin)}
    if bias:
        shapes[f'{prefix}.bias'] = (cout,)
    return shapes


def official_backbone_shapes(
    channels: int,
    depths: Sequence[int],
    groups: Sequence[int],
    layer_scale: bool = False,
    post_norm: bool = False,
    res_post_norm: bool = False,
    dw_kernel_size: int = 3,
    center_feature_scale: bool = False,
    level2_post_norm_block_ids: Optional[Sequence[int]] = None,
    mlp_ratio: float = 4.0,
) -> 'OrderedDict[str, Shape]':
    """Key -> shape of an official InternImage backbone (as in its classification file)."""
    shapes = OrderedDict()
    half = channels // 2
    shapes['patch_embed.conv1.weight'] = (half, 3, 3, 3)
    shapes['patch_embed.conv1.bias'] = (half,)
    shapes.update(_ln('patch_embed.norm1.1', half))  # [to_channels_last, LN, to_channels_first]
    shapes['patch_embed.conv2.weight'] = (channels, half, 3, 3)
    shapes['patch_embed.conv2.bias'] = (channels,)
    shapes.update(_ln('patch_embed.norm2.1', channels))  # [to_channels_last, LN]
    for i, (depth, group) in enumerate(zip(depths, groups)):
        dim = channels * 2**i
        points = 9
        for j in range(depth):
            block = f'levels.{i}.blocks.{j}'
            shapes.update(_ln(f'{block}.norm1.0', dim))
            dcn = f'{block}.dcn'
            shapes[f'{dcn}.dw_conv.0.weight'] = (dim, 1, dw_kernel_size, dw_kernel_size)
            shapes[f'{dcn}.dw_conv.0.bias'] = (dim,)
            shapes.update(_ln(f'{dcn}.dw_conv.1.1', dim))
            shapes.update(_linear(f'{dcn}.offset', dim, group * points * 2))
            shapes.update(_linear(f'{dcn}.mask', dim, group * points))
            shapes.update(_linear(f'{dcn}.input_proj', dim, dim))
            shapes.update(_linear(f'{dcn}.output_proj', dim, dim))
            if center_feature_scale:
                shapes[f'{dcn}.center_feature_scale_proj_weight'] = (group, dim)
                shapes[f'{dcn}.center_feature_scale_proj_bias'] = (group,)
            shapes.update(_ln(f'{block}.norm2.0', dim))
            hidden = int(dim * mlp_ratio)
            shapes.update(_linear(f'{block}.mlp.fc1', dim, hidden))
            shapes.update(_linear(f'{block}.mlp.fc2', hidden, dim))
            if layer_scale:
                shapes[f'{block}.gamma1'] = (dim,)
                shapes[f'{block}.gamma2'] = (dim,)
            if res_post_norm:
                shapes.update(_ln(f'{block}.res_post_norm1.0', dim))
                shapes.update(_ln(f'{block}.res_post_norm2.0', dim))
        if not post_norm or center_feature_scale:
            shapes.update(_ln(f'levels.{i}.norm.0', dim))
        if i == 2 and level2_post_norm_block_ids:
            for k in range(len(level2_post_norm_block_ids)):
                shapes.update(_ln(f'levels.{i}.post_norms.{k}.0', dim))
        if i < len(depths) - 1:
            shapes[f'levels.{i}.downsample.conv.weight'] = (2 * dim, dim, 3, 3)
            shapes.update(_ln(f'levels.{i}.downsample.norm.1', 2 * dim))
    return shapes


def official_cls_head_shapes(
    last_channels: int, num_classes: int, cls_scale: float = 1.5
) -> 'OrderedDict[str, Shape]':
    """Head of the released T-XL classifiers: conv_head = [Conv2d, Sequential(BN), GELU]."""
    mid = int(last_channels * cls_scale)
    shapes = OrderedDict()
    shapes['conv_head.0.weight'] = (mid, last_channels, 1, 1)
    for name in ('weight', 'bias', 'running_mean', 'running_var'):
        shapes[f'conv_head.1.0.{name}'] = (mid,)
    shapes['conv_head.1.0.num_batches_tracked'] = ()
    shapes['head.weight'] = (num_classes, mid)
    shapes['head.bias'] = (num_classes,)
    return shapes


def official_attn_pool_head_shapes(
    last_channels: int, num_classes: int
) -> 'OrderedDict[str, Shape]':
    """Head of the released H/G classifiers (embed 1024, 16 heads, output 768)."""
    embed, out = 1024, 768
    shapes = OrderedDict()
    shapes['dcnv3_head_x4.0.weight'] = (embed * 4, last_channels, 1, 1)
    shapes['dcnv3_head_x4.0.bias'] = (embed * 4,)
    shapes['dcnv3_head_x3.weight'] = (embed, last_channels // 2, 1, 1)
    shapes['dcnv3_head_x3.bias'] = (embed,)
    for name in ('norm1_q', 'norm1_k', 'norm1_v'):
        shapes.update(_ln(f'clip_projector.{name}.0', embed))
    for name in ('q', 'k', 'v'):
        shapes[f'clip_projector.cross_dcn.{name}.weight'] = (embed, embed)
        shapes[f'clip_projector.cross_dcn.{name}_bias'] = (embed,)
    shapes.update(_linear('clip_projector.cross_dcn.proj', embed, out))
    shapes.update(_ln('fc_norm.0', out))
    shapes.update(_linear('head', out, num_classes))
    return shapes


def random_state_dict(shapes: Dict[str, Shape], seed: int = 0) -> 'OrderedDict[str, torch.Tensor]':
    """Random tensors of the given shapes (positive running_var, integer counter)."""
    generator = torch.Generator().manual_seed(seed)
    state = OrderedDict()
    for key, shape in shapes.items():
        if key.endswith('num_batches_tracked'):
            state[key] = torch.tensor(7)
        elif key.endswith('running_var'):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.1
    return state


TINY_ARCH = dict(channels=16, depths=[1, 1, 2, 1], groups=[1, 2, 4, 8])


def use_reference_op() -> bool:
    """Backbone tests run the compiled DCNv3 op when it is built, the reference otherwise."""
    import ops_dcnv3

    return not ops_dcnv3.extension_available()


def assert_loads_exactly(model: torch.nn.Module, weights: Dict[str, torch.Tensor]) -> None:
    """``model.init_weights()`` (its ``init_cfg`` names the checkpoint) fills it with exactly
    ``weights``: the same key set, equal tensors, and no missing or unexpected key logged."""
    with mock.patch('internimage.checkpoint.print_log') as log:
        model.init_weights()
    state = model.state_dict()
    assert set(state) == set(weights)  # zero missing, zero unexpected
    for key, value in weights.items():
        assert torch.equal(state[key], value), key
    messages = ' '.join(str(c.args[0]) for c in log.call_args_list)
    assert 'Missing' not in messages and 'Unexpected' not in messages


def official_classification_layout(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The keys of an mmpretrain ``ImageClassifier`` (ours) as an official classification
    file names them (docs/checkpoints.md, "Converting"): backbone keys at the root, the
    final Linear ``head.*``, the rest of the head without its ``head.`` prefix."""
    official = {}
    for key, value in state_dict.items():
        if key.startswith('backbone.'):
            official[key[len('backbone.') :]] = value
        elif key.startswith('head.fc.'):
            official['head.' + key[len('head.fc.') :]] = value
        else:
            official[key[len('head.') :]] = value
    return official
