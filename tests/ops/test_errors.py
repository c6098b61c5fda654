"""Bad arguments raise clear errors that name the argument."""

import pytest
import torch

import ops_dcnv3.functional
from ops_dcnv3 import MAX_SOFTMAX_POINTS, check_dcnv3_args, dcnv3, dcnv3_reference
from ops_dcnv3.testing import DCNv3Config

CFG = DCNv3Config(group=2, group_channels=4)  # C = 8, K = 9


def valid_args():
    input = torch.rand(2, 5, 6, 8)
    offset = torch.rand(2, 5, 6, 2 * 9 * 2)
    mask = torch.rand(2, 5, 6, 2 * 9)
    return dict(input=input, offset=offset, mask=mask, **CFG.kwargs)


# (case id, changes to the valid arguments, error type, message pattern)
BAD_INPUTS = [
    ('input_not_tensor', dict(input=[[1.0]]), TypeError, 'input must be a torch.Tensor'),
    ('input_rank', dict(input=torch.rand(5, 6, 8)), ValueError, 'input must be a 4-D'),
    ('offset_rank', dict(offset=torch.rand(2, 5, 6, 18, 2)), ValueError, 'offset must be a 4-D'),
    ('mask_rank', dict(mask=torch.rand(2, 30, 18)), ValueError, 'mask must be a 4-D'),
    (
        'input_int_dtype',
        dict(input=torch.ones(2, 5, 6, 8, dtype=torch.int64)),
        TypeError,
        'input must be a floating-point',
    ),
    (
        'offset_dtype',
        dict(offset=torch.rand(2, 5, 6, 36, dtype=torch.float64)),
        TypeError,
        r'offset must have the dtype of input \(torch.float32\)',
    ),
    (
        'mask_dtype',
        dict(mask=torch.rand(2, 5, 6, 18, dtype=torch.float64)),
        TypeError,
        'mask must have the dtype of input',
    ),
    (
        'offset_device',
        dict(offset=torch.empty(2, 5, 6, 36, device='meta')),
        ValueError,
        'offset must be on the device of input',
    ),
    (
        'mask_device',
        dict(mask=torch.empty(2, 5, 6, 18, device='meta')),
        ValueError,
        'mask must be on the device of input',
    ),
    (
        'offset_channels',
        dict(offset=torch.rand(2, 5, 6, 18)),
        ValueError,
        r'offset must have shape \(N, H_out, W_out, group \* K \* 2\) = \(2, 5, 6, 36\)',
    ),
    (
        'mask_channels',
        dict(mask=torch.rand(2, 5, 6, 9)),
        ValueError,
        r'mask must have shape .* = \(2, 5, 6, 18\), got \(2, 5, 6, 9\)',
    ),
    ('offset_batch', dict(offset=torch.rand(1, 5, 6, 36)), ValueError, 'offset must have shape'),
    ('mask_batch', dict(mask=torch.rand(3, 5, 6, 18)), ValueError, 'mask must have shape'),
    ('offset_spatial', dict(offset=torch.rand(2, 6, 5, 36)), ValueError, 'offset must have shape'),
    ('mask_spatial', dict(mask=torch.rand(2, 5, 5, 18)), ValueError, 'mask must have shape'),
    (
        'offset_for_other_stride',
        dict(stride=(2, 1)),
        ValueError,
        r'offset must have shape .*\(2, 3, 6, 36\)',
    ),
    (
        'channels_vs_group',
        dict(group=3),
        ValueError,
        r'input channels \(8\) must be divisible by group \(3\)',
    ),
    ('group_float', dict(group=2.0), TypeError, 'group must be an int, got float'),
    ('kernel_size_zero', dict(kernel_size=0), ValueError, 'kernel_size must be >= 1, got 0'),
    (
        'kernel_size_negative_w',
        dict(kernel_size=(3, -3)),
        ValueError,
        r'kernel_size must be >= 1, got \(3, -3\)',
    ),
    (
        'kernel_size_float',
        dict(kernel_size=3.0),
        TypeError,
        r'kernel_size must be an int or an \(h, w\) pair of ints, got 3.0',
    ),
    ('kernel_size_triple', dict(kernel_size=(3, 3, 3)), TypeError, 'kernel_size must be an int or'),
    ('kernel_size_bool', dict(kernel_size=(3, True)), TypeError, 'kernel_size must be an int or'),
    ('stride_zero', dict(stride=0), ValueError, 'stride must be >= 1'),
    ('stride_w_zero', dict(stride=(1, 0)), ValueError, r'stride must be >= 1, got \(1, 0\)'),
    ('stride_str', dict(stride='1'), TypeError, 'stride must be an int or'),
    ('padding_negative', dict(padding=-1), ValueError, 'padding must be >= 0'),
    ('padding_w_negative', dict(padding=(1, -1)), ValueError, 'padding must be >= 0'),
    ('dilation_zero', dict(dilation=0), ValueError, 'dilation must be >= 1'),
    ('dilation_h_zero', dict(dilation=(0, 1)), ValueError, 'dilation must be >= 1'),
    ('group_zero', dict(group=0), ValueError, 'group must be >= 1'),
    ('offset_scale_str', dict(offset_scale='1'), TypeError, 'offset_scale must be a finite float'),
    ('offset_scale_inf', dict(offset_scale=float('inf')), TypeError, 'offset_scale must be'),
    ('offset_scale_nan', dict(offset_scale=float('nan')), TypeError, 'offset_scale must be'),
    ('remove_center_value', dict(remove_center=2), TypeError, 'remove_center must be a bool'),
    ('softmax_mask_value', dict(softmax_mask='yes'), TypeError, 'softmax_mask must be a bool'),
    (
        'remove_center_even_kernel',
        dict(kernel_size=(2, 3), remove_center=True),
        ValueError,
        r'remove_center requires an odd kernel_size .*got kernel_size=\(2, 3\)',
    ),
    (
        'input_too_small',
        dict(input=torch.rand(2, 1, 6, 8), padding=(0, 1)),
        ValueError,
        r'input spatial size \(H, W\) = \(1, 6\) is too small',
    ),
    ('dilation_too_large', dict(dilation=(1, 4)), ValueError, 'input spatial size'),
]


OPS = [pytest.param(dcnv3, marks=pytest.mark.needs_extension, id='dcnv3'), 'reference']


@pytest.mark.parametrize('op', OPS)
@pytest.mark.parametrize(
    'changes, error, pattern',
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input(op, changes, error, pattern):
    op = dcnv3_reference if op == 'reference' else op
    args = valid_args()
    args.update(changes)
    with pytest.raises(error, match=pattern):
        op(**args)


@pytest.mark.parametrize('op', OPS)
def test_group_is_a_required_keyword(op):
    op = dcnv3_reference if op == 'reference' else op
    args = valid_args()
    del args['group']
    name = 'dcnv3' if op is dcnv3 else 'dcnv3_reference'
    with pytest.raises(
        TypeError, match=f"^{name}\\(\\) missing 1 required keyword-only argument: 'group'"
    ):
        op(**args)
    # The hyper-parameters are keyword-only: the old positional call is rejected.
    with pytest.raises(TypeError, match=f'^{name}\\(\\) takes 3 positional arguments'):
        op(args['input'], args['offset'], args['mask'], 3, 3, 1, 1, 1, 1, 1, 1, 2, 4, 1.0, 1, False)


def test_check_dcnv3_args_returns_the_schema_params():
    args = valid_args()
    params = check_dcnv3_args(**args, softmax_mask=False)
    assert params == CFG.schema_args + (False,)
    assert params.group_channels == 4 and params._fields[-1] == 'softmax_mask'
    params = check_dcnv3_args(
        args['input'],
        torch.rand(2, 3, 1, 2 * 15 * 2),
        torch.rand(2, 3, 1, 2 * 15),
        kernel_size=(3, 5),
        stride=(2, 3),
        padding=(1, 0),
        dilation=1,
        group=2,
        offset_scale=1,
        remove_center=False,
        softmax_mask=True,
    )
    assert params == (3, 5, 2, 3, 1, 0, 1, 1, 2, 4, 1.0, False, True)
    assert isinstance(params.offset_scale, float)


@pytest.mark.needs_extension
def test_valid_arguments_pass():
    """The base case of the table above is valid, so each error comes from its one change."""
    args = valid_args()
    assert dcnv3(**args).shape == dcnv3_reference(**args).shape == (2, 5, 6, 8)


@pytest.mark.needs_extension
@pytest.mark.parametrize(
    'dtype, error, pattern',
    [
        (torch.int32, TypeError, 'input must be a floating-point'),
        (torch.float8_e4m3fn, TypeError, 'float8_e4m3fn is not supported by the compiled DCNv3 op'),
    ],
    ids=['int32', 'float8'],
)
def test_dtype_without_kernel(dtype, error, pattern):
    args = valid_args()
    for name in ('input', 'offset', 'mask'):
        args[name] = args[name].to(dtype)
    with pytest.raises(error, match=pattern):
        dcnv3(**args)


@pytest.mark.needs_extension
def test_fused_softmax_point_limit_is_the_compiled_op_s():
    """softmax_mask with more than MAX_SOFTMAX_POINTS points: an error from dcnv3 only."""
    assert MAX_SOFTMAX_POINTS == 64
    input = torch.rand(1, 9, 9, 2)
    offset = torch.zeros(1, 9, 9, 2 * 81)
    logits = torch.zeros(1, 9, 9, 81)
    args = dict(kernel_size=9, padding=4, group=1)
    with pytest.raises(
        ValueError,
        match='softmax_mask=True supports at most 64 sampling points '
        'per group in the compiled op, got 81',
    ):
        dcnv3(input, offset, logits, **args, softmax_mask=True)
    out = dcnv3_reference(input, offset, logits, **args, softmax_mask=True)
    uniform = torch.full_like(logits, 1 / 81)
    torch.testing.assert_close(out, dcnv3_reference(input, offset, uniform, **args))


def test_missing_extension_says_how_to_build(monkeypatch):
    monkeypatch.setattr(ops_dcnv3.functional, '_C', None)
    monkeypatch.setattr(ops_dcnv3.functional, '_C_IMPORT_ERROR', ImportError('no _C'))
    with pytest.raises(RuntimeError, match=r'ops_dcnv3._C is not available .*setup.py build_ext'):
        dcnv3(**valid_args())
