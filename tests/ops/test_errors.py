"""Bad arguments raise clear errors that name the argument."""

import pytest
import torch

import ops_dcnv3.functional
from ops_dcnv3 import dcnv3, dcnv3_reference
from ops_dcnv3.testing import DCNv3Config

CFG = DCNv3Config(group=2, group_channels=4)  # C = 8, K = 9
ARG_NAMES = ('input', 'offset', 'mask') + tuple(CFG.__dataclass_fields__)


def valid_args():
    input = torch.rand(2, 5, 6, 8)
    offset = torch.rand(2, 5, 6, 2 * 9 * 2)
    mask = torch.rand(2, 5, 6, 2 * 9)
    return dict(zip(ARG_NAMES, (input, offset, mask, *CFG.args)))


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
        dict(stride_h=2),
        ValueError,
        r'offset must have shape .*\(2, 3, 6, 36\)',
    ),
    (
        'channels_vs_group',
        dict(group=3),
        ValueError,
        r'input channels \(8\) must equal group \* group_channels = 3 \* 4 = 12',
    ),
    (
        'channels_vs_group_channels',
        dict(group_channels=3),
        ValueError,
        r'input channels \(8\) must equal group \* group_channels',
    ),
    ('kernel_h_zero', dict(kernel_h=0), ValueError, 'kernel_h must be >= 1, got 0'),
    ('kernel_w_negative', dict(kernel_w=-3), ValueError, 'kernel_w must be >= 1, got -3'),
    ('kernel_h_float', dict(kernel_h=3.0), TypeError, 'kernel_h must be an int, got float'),
    ('stride_h_zero', dict(stride_h=0), ValueError, 'stride_h must be >= 1'),
    ('stride_w_zero', dict(stride_w=0), ValueError, 'stride_w must be >= 1'),
    ('pad_h_negative', dict(pad_h=-1), ValueError, 'pad_h must be >= 0'),
    ('pad_w_negative', dict(pad_w=-1), ValueError, 'pad_w must be >= 0'),
    ('dilation_h_zero', dict(dilation_h=0), ValueError, 'dilation_h must be >= 1'),
    ('dilation_w_zero', dict(dilation_w=0), ValueError, 'dilation_w must be >= 1'),
    ('group_zero', dict(group=0), ValueError, 'group must be >= 1'),
    ('group_channels_zero', dict(group_channels=0), ValueError, 'group_channels must be >= 1'),
    ('im2col_step_zero', dict(im2col_step=0), ValueError, 'im2col_step must be >= 1'),
    ('im2col_step_bool', dict(im2col_step=True), TypeError, 'im2col_step must be an int'),
    ('offset_scale_str', dict(offset_scale='1'), TypeError, 'offset_scale must be a finite float'),
    ('offset_scale_inf', dict(offset_scale=float('inf')), TypeError, 'offset_scale must be'),
    ('offset_scale_nan', dict(offset_scale=float('nan')), TypeError, 'offset_scale must be'),
    ('remove_center_value', dict(remove_center=2), TypeError, 'remove_center must be a bool'),
    ('softmax_mask_value', dict(softmax_mask='yes'), TypeError, 'softmax_mask must be a bool'),
    (
        'remove_center_even_kernel',
        dict(kernel_h=2, kernel_w=3, remove_center=True),
        ValueError,
        'remove_center requires odd kernel_h and kernel_w',
    ),
    (
        'input_too_small',
        dict(input=torch.rand(2, 1, 6, 8), pad_h=0),
        ValueError,
        r'input spatial size \(H, W\) = \(1, 6\) is too small',
    ),
    ('dilation_too_large', dict(dilation_w=4), ValueError, 'input spatial size'),
]


@pytest.mark.parametrize('op', [dcnv3, dcnv3_reference], ids=['dcnv3', 'reference'])
@pytest.mark.parametrize(
    'changes, error, pattern',
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input(op, changes, error, pattern):
    args = valid_args()
    args.update(changes)
    with pytest.raises(error, match=pattern):
        op(**args)


def test_valid_arguments_pass():
    """The base case of the table above is valid, so each error comes from its one change."""
    args = valid_args()
    assert dcnv3(**args).shape == dcnv3_reference(**args).shape == (2, 5, 6, 8)


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


def test_fused_softmax_point_limit_is_the_compiled_op_s():
    """softmax_mask with more than MAX_SOFTMAX_POINTS points: an error from dcnv3 only."""
    input = torch.rand(1, 9, 9, 2)
    offset = torch.zeros(1, 9, 9, 2 * 81)
    logits = torch.zeros(1, 9, 9, 81)
    args = (9, 9, 1, 1, 4, 4, 1, 1, 1, 2, 1.0, 1, False)
    with pytest.raises(
        ValueError,
        match='softmax_mask=True supports at most 64 sampling points '
        'per group in the compiled op, got 81',
    ):
        dcnv3(input, offset, logits, *args, softmax_mask=True)
    out = dcnv3_reference(input, offset, logits, *args, softmax_mask=True)
    uniform = torch.full_like(logits, 1 / 81)
    torch.testing.assert_close(out, dcnv3_reference(input, offset, uniform, *args))


def test_missing_extension_says_how_to_build(monkeypatch):
    monkeypatch.setattr(ops_dcnv3.functional, '_C', None)
    monkeypatch.setattr(ops_dcnv3.functional, '_C_IMPORT_ERROR', ImportError('no _C'))
    with pytest.raises(RuntimeError, match=r'ops_dcnv3._C is not available .*setup.py build_ext'):
        dcnv3(**valid_args())
