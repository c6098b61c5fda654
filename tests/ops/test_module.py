"""The DCNv3 module: parameter layout, initial behaviour, compiled vs reference path."""

import copy

import pytest
import torch
import torch.nn.functional as F

from ops_dcnv3 import DCNv3, build_layout_norm, dcnv3_reference
from ops_dcnv3.testing import randomise_parameters as randomise

BASE_KEYS = {
    'dw_conv.0.weight',
    'dw_conv.0.bias',
    'dw_conv.1.1.weight',
    'dw_conv.1.1.bias',
    'offset.weight',
    'offset.bias',
    'mask.weight',
    'mask.bias',
    'input_proj.weight',
    'input_proj.bias',
    'output_proj.weight',
    'output_proj.bias',
}


@pytest.mark.parametrize('center_feature_scale', [False, True])
@pytest.mark.parametrize('remove_center', [False, True])
def test_state_dict_layout(center_feature_scale, remove_center):
    module = DCNv3(
        channels=32, group=4, center_feature_scale=center_feature_scale, remove_center=remove_center
    )
    expected = set(BASE_KEYS)
    if center_feature_scale:
        expected |= {'center_feature_scale_proj_weight', 'center_feature_scale_proj_bias'}
    state = module.state_dict()
    assert set(state) == expected
    points = 9 - remove_center
    assert state['offset.weight'].shape == (4 * points * 2, 32)
    assert state['mask.weight'].shape == (4 * points, 32)
    assert state['dw_conv.0.weight'].shape == (32, 1, 3, 3)
    if center_feature_scale:
        assert state['center_feature_scale_proj_weight'].shape == (4, 32)
        assert state['center_feature_scale_proj_bias'].shape == (4,)


def test_initialisation():
    module = DCNv3(channels=16, group=2, center_feature_scale=True)
    for name in (
        'offset.weight',
        'offset.bias',
        'mask.weight',
        'mask.bias',
        'input_proj.bias',
        'output_proj.bias',
        'center_feature_scale_proj_weight',
        'center_feature_scale_proj_bias',
    ):
        assert torch.count_nonzero(module.state_dict()[name]) == 0, name
    assert torch.count_nonzero(module.input_proj.weight) > 0
    bound = (6 / (16 + 16)) ** 0.5  # xavier-uniform
    assert module.input_proj.weight.abs().max() <= bound


@pytest.mark.parametrize(
    'use_reference', [True, pytest.param(False, marks=pytest.mark.needs_extension)]
)
def test_initial_module_is_projected_box_filter(use_reference):
    """Zero offsets and a uniform softmax: the op is a 3x3 mean with zero padding."""
    module = DCNv3(channels=8, group=2, use_reference=use_reference).double()
    x = torch.randn(2, 5, 6, 8, dtype=torch.float64)
    value = module.input_proj(x).permute(0, 3, 1, 2)
    box = F.avg_pool2d(value, 3, stride=1, padding=1, count_include_pad=True)
    expected = module.output_proj(box.permute(0, 2, 3, 1))
    torch.testing.assert_close(module(x), expected, atol=1e-12, rtol=0)


def test_center_feature_scale_gate():
    module = randomise(
        DCNv3(channels=8, group=2, center_feature_scale=True, use_reference=True).double()
    )
    x = torch.randn(1, 4, 5, 8, dtype=torch.float64)
    # The formula written out: y = core * (1 - s) + v * s, s = sigmoid(W q + b) per group.
    value = module.input_proj(x)
    query = module.dw_conv(x.permute(0, 3, 1, 2))
    mask = F.softmax(module.mask(query).view(1, 4, 5, 2, 9), dim=-1).flatten(3)
    core = dcnv3_reference(value, module.offset(query), mask, group=2)
    gate = torch.sigmoid(
        query @ module.center_feature_scale_proj_weight.T + module.center_feature_scale_proj_bias
    )  # (N, H, W, G)
    scale = gate[..., [0, 0, 0, 0, 1, 1, 1, 1]]
    expected = module.output_proj(core * (1 - scale) + value * scale)
    torch.testing.assert_close(module(x), expected, atol=1e-12, rtol=1e-12)
    # A saturated gate (s = 1) passes the projected input straight through.
    with torch.no_grad():
        module.center_feature_scale_proj_weight.zero_()
        module.center_feature_scale_proj_bias.fill_(100.0)
    torch.testing.assert_close(module(x), module.output_proj(module.input_proj(x)))


MODULE_VARIANTS = {
    'default': dict(channels=32, group=2),
    'center_feature_scale': dict(channels=32, group=2, center_feature_scale=True),
    'remove_center': dict(channels=32, group=2, remove_center=True),
    'stride2': dict(channels=32, group=4, stride=2),
    'kernel5_dw3_offset_scale2': dict(
        channels=32, group=2, kernel_size=5, pad=2, dw_kernel_size=3, offset_scale=2.0
    ),
    'dilation2_relu_bn': dict(
        channels=16, group=1, dilation=2, pad=2, act_layer='ReLU', norm_layer='BN'
    ),
}


@pytest.mark.needs_extension
@pytest.mark.parametrize('name', list(MODULE_VARIANTS))
def test_compiled_matches_reference_path(name):
    compiled = randomise(DCNv3(**MODULE_VARIANTS[name]).double())
    reference = copy.deepcopy(compiled)
    reference.use_reference = True
    x = torch.randn(2, 7, 6, compiled.channels, dtype=torch.float64)
    outputs = []
    for module in (compiled, reference):
        inp = x.clone().requires_grad_()
        out = module(inp)
        out.pow(2).sum().backward()
        outputs.append((out, inp.grad, {n: p.grad for n, p in module.named_parameters()}))
    (out, grad_x, grads), (ref_out, ref_grad_x, ref_grads) = outputs
    torch.testing.assert_close(out, ref_out, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(grad_x, ref_grad_x, atol=1e-10, rtol=1e-10)
    for param_name, grad in grads.items():
        torch.testing.assert_close(
            grad,
            ref_grads[param_name],
            atol=1e-10,
            rtol=1e-10,
            msg=lambda m, n=param_name: f'{n}: {m}',
        )
    if compiled.stride == 2:
        assert out.shape == (2, 4, 3, compiled.channels)


@pytest.mark.needs_extension
def test_float32_module_runs_compiled_op():
    module = randomise(DCNv3(channels=16, group=1))
    x = torch.randn(1, 5, 5, 16)
    reference = copy.deepcopy(module)
    reference.use_reference = True
    torch.testing.assert_close(module(x), reference(x), atol=1e-5, rtol=1e-5)


def test_constructor_errors_and_warning():
    with pytest.raises(ValueError, match='channels must be divisible by group'):
        DCNv3(channels=30, group=4)
    with pytest.raises(ValueError, match=r'pad must be dilation \* \(kernel_size - 1\) / 2 = 2'):
        DCNv3(channels=16, kernel_size=3, dilation=2, pad=1)
    with pytest.raises(ValueError, match='remove_center requires an odd kernel_size'):
        DCNv3(channels=16, kernel_size=2, dilation=2, pad=1, dw_kernel_size=3, remove_center=True)
    with pytest.raises(ValueError, match='dw_kernel_size must be odd'):
        DCNv3(channels=16, dw_kernel_size=2)
    with pytest.raises(ValueError, match='center_feature_scale'):
        DCNv3(channels=16, stride=2, center_feature_scale=True)
    with pytest.raises(ValueError, match='norm_layer'):
        DCNv3(channels=16, norm_layer='GN')
    with pytest.raises(ValueError, match='act_layer'):
        DCNv3(channels=16, act_layer='Tanh')
    with pytest.warns(UserWarning, match='power of two'):
        DCNv3(channels=24, group=2)
    with pytest.raises(ValueError, match=r'x must be channels-last \(N, H, W, 16\)'):
        DCNv3(channels=16, use_reference=True)(torch.zeros(1, 16, 4, 4))


def test_build_layout_norm_layouts():
    x = torch.randn(2, 4, 3, 5)  # channels-first, C=4
    ln = build_layout_norm(4, 'LN', 'channels_first', 'channels_first')
    assert [type(m).__name__ for m in ln] == ['to_channels_last', 'LayerNorm', 'to_channels_first']
    torch.testing.assert_close(
        ln(x), F.layer_norm(x.permute(0, 2, 3, 1), (4,), eps=1e-6).permute(0, 3, 1, 2)
    )
    bn = build_layout_norm(4, 'BN', 'channels_last', 'channels_last').eval()
    assert [type(m).__name__ for m in bn] == [
        'to_channels_first',
        'BatchNorm2d',
        'to_channels_last',
    ]
    torch.testing.assert_close(bn(x.permute(0, 2, 3, 1)), x.permute(0, 2, 3, 1) / (1 + 1e-5) ** 0.5)
    with pytest.raises(ValueError, match='in_format'):
        build_layout_norm(4, 'LN', 'nchw')


@pytest.mark.needs_extension
def test_bfloat16_autocast_on_cpu():
    """Under CPU autocast the op runs its bf16 kernel; bound: 3e-2 of the largest output."""
    module = randomise(DCNv3(channels=32, group=2))
    reference = copy.deepcopy(module)
    reference.use_reference = True
    x = torch.randn(2, 6, 6, 32)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = module(x)
    assert out.dtype == torch.bfloat16
    expected = reference(x)
    assert (out.float() - expected).abs().max() <= 3e-2 * expected.abs().max()
