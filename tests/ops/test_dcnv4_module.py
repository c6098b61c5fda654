"""The DCNv4 module: official parameter layout, forward definition, compiled vs reference."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from ops_dcnv3 import DCNv4, dcnv4_reference, pack_offset_mask
from ops_dcnv3.testing import randomise_parameters


def official_dcnv4_keys(channels, group, kernel_size=3, dw_kernel_size=None,
                        center_feature_scale=False, remove_center=False, output_bias=True,
                        without_pointwise=False):  # fmt: skip
    """Parameter names and shapes of the official DCNv4 module (OpenGVLab/DCNv4,
    DCNv4_op/DCNv4/modules/dcnv4.py), written from its constructor."""
    points = group * (kernel_size * kernel_size - int(remove_center))
    packed = int(math.ceil(points * 3 / 8) * 8)
    keys = {}
    if dw_kernel_size is not None:
        keys['offset_mask_dw.weight'] = (channels, 1, dw_kernel_size, dw_kernel_size)
        keys['offset_mask_dw.bias'] = (channels,)
    keys['offset_mask.weight'] = (packed, channels)
    keys['offset_mask.bias'] = (packed,)
    if not without_pointwise:
        keys['value_proj.weight'] = (channels, channels)
        keys['value_proj.bias'] = (channels,)
        keys['output_proj.weight'] = (channels, channels)
        if output_bias:
            keys['output_proj.bias'] = (channels,)
    if center_feature_scale:
        keys['center_feature_scale_proj_weight'] = (group, channels)
        keys['center_feature_scale_proj_bias'] = (group,)
    return keys


OPTIONS = {
    'flash-t': dict(channels=64, group=4),
    'flash-s-b': dict(channels=80, group=5, dw_kernel_size=3),
    'flash-l': dict(channels=160, group=10, dw_kernel_size=3),
    'no-output-bias': dict(channels=48, group=3, output_bias=False),
    'cfs-rc': dict(channels=24, group=2, center_feature_scale=True, remove_center=True),
    'without-pointwise': dict(channels=16, group=2, without_pointwise=True, dw_kernel_size=5),
}


@pytest.mark.parametrize('name', list(OPTIONS))
def test_state_dict_matches_the_official_module(name):
    module = DCNv4(**OPTIONS[name])
    actual = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    assert actual == official_dcnv4_keys(**OPTIONS[name])


def test_fresh_module_has_zero_point_weights_so_outputs_the_bias():
    """offset_mask starts at zero: zero point weights, so the op's output is zero."""
    module = DCNv4(channels=16, group=2)
    x = torch.randn(2, 5, 6, 16)
    torch.testing.assert_close(module(x), module.output_proj.bias.expand(2, 5, 6, 16))


@pytest.mark.needs_extension
def test_zero_offsets_sample_the_kernel_grid():
    """Zero offsets and per-point weights w_k (in the bias): each group's output is the
    depthwise 3x3 convolution of the projected input with w_k at the grid positions,
    zero-padded, computed here by F.conv2d."""
    group, channels = 2, 16
    module = DCNv4(channels=channels, group=group)
    generator = torch.Generator().manual_seed(3)
    point_weights = torch.randn(group, 9, generator=generator)  # k = i_x * 3 + i_y
    with torch.no_grad():
        module.output_proj.bias.normal_(generator=generator)
        module.offset_mask.bias.copy_(
            pack_offset_mask(torch.zeros(group * 18), point_weights.flatten(), group)
        )
    x = torch.randn(2, 5, 6, channels, generator=generator)
    value = module.value_proj(x).permute(0, 3, 1, 2)
    # conv2d weight (out, in / groups, kh, kw) = w_k at row i_y, column i_x, per channel
    kernel = point_weights.view(group, 3, 3).transpose(1, 2)
    kernel = kernel.repeat_interleave(channels // group, dim=0)[:, None]
    expected = F.conv2d(value, kernel, padding=1, groups=channels).permute(0, 2, 3, 1)
    expected = module.output_proj(expected)
    torch.testing.assert_close(module(x), expected, atol=1e-5, rtol=1e-5)


def forward_by_definition(module, x):
    """The official module's forward, written out with torch functions."""
    value = x if module.without_pointwise else F.linear(
        x, module.value_proj.weight, module.value_proj.bias
    )  # fmt: skip
    query = x
    if module.dw_kernel_size is not None:
        query = F.conv2d(
            x.permute(0, 3, 1, 2),
            module.offset_mask_dw.weight,
            module.offset_mask_dw.bias,
            padding=(module.dw_kernel_size - 1) // 2,
            groups=module.channels,
        ).permute(0, 2, 3, 1)
    offset_mask = F.linear(query, module.offset_mask.weight, module.offset_mask.bias)
    out = dcnv4_reference(
        value,
        offset_mask,
        kernel_size=module.kernel_size,
        padding=module.pad,
        group=module.group,
        offset_scale=module.offset_scale,
        remove_center=module.remove_center,
    )
    if module.center_feature_scale:
        gate = torch.sigmoid(
            F.linear(
                out,
                module.center_feature_scale_proj_weight,
                module.center_feature_scale_proj_bias,
            )
        )
        gate = gate[..., None].repeat(1, 1, 1, 1, module.group_channels).flatten(-2)
        out = out * (1 - gate) + value * gate
    if module.without_pointwise:
        return out
    return F.linear(out, module.output_proj.weight, module.output_proj.bias)


@pytest.mark.parametrize('name', ['flash-s-b', 'cfs-rc', 'without-pointwise', 'no-output-bias'])
def test_reference_module_follows_the_definition(name):
    module = randomise_parameters(DCNv4(**OPTIONS[name], use_reference=True).double())
    x = torch.randn(2, 5, 4, module.channels, dtype=torch.float64)
    torch.testing.assert_close(module(x), forward_by_definition(module, x), atol=1e-12, rtol=1e-12)


@pytest.mark.needs_extension
@pytest.mark.parametrize('name', ['flash-t', 'cfs-rc', 'without-pointwise'])
def test_compiled_op_module_matches_reference_module(name):
    reference = randomise_parameters(DCNv4(**OPTIONS[name], use_reference=True).double())
    compiled = copy.deepcopy(reference)
    compiled.use_reference = False
    x = torch.randn(2, 6, 5, reference.channels, dtype=torch.float64)
    outs, grads = [], []
    for module in (compiled, reference):
        leaf = x.clone().requires_grad_()
        out = module(leaf)
        out.square().sum().backward()
        outs.append(out)
        grads.append([leaf.grad, *(p.grad for p in module.parameters())])
    torch.testing.assert_close(outs[0], outs[1], atol=1e-10, rtol=1e-10)
    for got, want in zip(*grads):
        torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)


@pytest.mark.needs_extension
def test_module_compiles_fullgraph():
    torch._dynamo.reset()
    module = randomise_parameters(DCNv4(channels=32, group=2, dw_kernel_size=3))
    compiled = torch.compile(copy.deepcopy(module), fullgraph=True, backend='aot_eager')
    x = torch.randn(2, 6, 7, 32)
    torch.testing.assert_close(compiled(x), module(x), atol=1e-5, rtol=1e-5)
    torch._dynamo.reset()


@pytest.mark.parametrize(
    'kwargs, pattern',
    [
        (dict(channels=30, group=4), 'channels must be divisible by group'),
        (dict(stride=2), 'stride must be 1'),
        (dict(pad=0), 'pad must be dilation'),
        (dict(dw_kernel_size=4), 'dw_kernel_size must be odd'),
        (dict(kernel_size=4, pad=2, dilation=1), 'pad must be dilation'),
    ],
)
def test_bad_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        DCNv4(**kwargs)


def test_rejects_channels_first_input():
    with pytest.raises(ValueError, match=r'x must be channels-last \(N, H, W, 64\)'):
        DCNv4()(torch.randn(1, 64, 5, 5)[:, :, :, :3])
