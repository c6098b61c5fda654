"""Bad DCNv4 arguments raise TypeError / ValueError naming the argument."""

import pytest
import torch

from ops_dcnv3 import DCNv4Params, check_dcnv4_args, dcnv4, dcnv4_reference

# C = 8, group 2, K = 9: G*K*3 = 54, padded by the official module to 56.
KWARGS = dict(kernel_size=3, stride=1, padding=1, dilation=1, group=2)


def valid_args():
    return dict(input=torch.rand(2, 5, 6, 8), offset_mask=torch.rand(2, 5, 6, 56), **KWARGS)


BAD_INPUTS = [
    ('input_not_tensor', dict(input=[[1.0]]), TypeError, 'input must be a torch.Tensor'),
    ('input_rank', dict(input=torch.rand(5, 6, 8)), ValueError, 'input must be a 4-D'),
    (
        'offset_mask_rank',
        dict(offset_mask=torch.rand(2, 30, 56)),
        ValueError,
        'offset_mask must be a 4-D',
    ),
    (
        'input_int_dtype',
        dict(input=torch.ones(2, 5, 6, 8, dtype=torch.int64)),
        TypeError,
        'input must be a floating-point',
    ),
    (
        'offset_mask_dtype',
        dict(offset_mask=torch.rand(2, 5, 6, 56, dtype=torch.float64)),
        TypeError,
        r'offset_mask must have the dtype of input \(torch.float32\)',
    ),
    (
        'offset_mask_device',
        dict(offset_mask=torch.empty(2, 5, 6, 56, device='meta')),
        ValueError,
        'offset_mask must be on the device of input',
    ),
    (
        'offset_mask_too_narrow',
        dict(offset_mask=torch.rand(2, 5, 6, 53)),
        ValueError,
        r'offset_mask must have shape \(N, H_out, W_out, P\) = \(2, 5, 6, P\) with '
        r'P >= group \* K \* 3 = 54 \(the official module pads P to 56\), got \(2, 5, 6, 53\)',
    ),
    (
        'offset_mask_spatial',
        dict(offset_mask=torch.rand(2, 6, 5, 56)),
        ValueError,
        r'offset_mask must have shape \(N, H_out, W_out, P\) = \(2, 5, 6, P\)',
    ),
    ('group_type', dict(group=2.0), TypeError, 'group must be an int'),
    ('group_divides', dict(group=3), ValueError, r'input channels \(8\) must be divisible'),
    ('kernel_size', dict(kernel_size=0), ValueError, 'kernel_size must be >= 1'),
    ('stride', dict(stride=(1, 0)), ValueError, 'stride must be >= 1'),
    ('padding', dict(padding=-1), ValueError, 'padding must be >= 0'),
    ('dilation_type', dict(dilation='2'), TypeError, 'dilation must be an int or an'),
    ('offset_scale', dict(offset_scale=float('inf')), TypeError, 'offset_scale must be a finite'),
    ('remove_center_type', dict(remove_center='yes'), TypeError, 'remove_center must be a bool'),
    (
        'remove_center_even_kernel',
        dict(kernel_size=2, remove_center=True, offset_mask=torch.rand(2, 4, 5, 24)),
        ValueError,
        'remove_center requires an odd kernel_size',
    ),
    (
        'too_small_input',
        dict(input=torch.rand(2, 1, 1, 8), padding=0, offset_mask=torch.rand(2, 1, 1, 56)),
        ValueError,
        r'input spatial size \(H, W\) = \(1, 1\) is too small',
    ),
]


# The compiled op first checks that the extension is built.
OPS = [pytest.param(dcnv4, marks=pytest.mark.needs_extension, id='dcnv4'), dcnv4_reference]


@pytest.mark.parametrize('op', OPS)
@pytest.mark.parametrize(
    'changes, error, pattern', [case[1:] for case in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS]
)
def test_bad_input_raises(op, changes, error, pattern):
    args = valid_args()
    args.update(changes)
    with pytest.raises(error, match=pattern):
        op(**args)


@pytest.mark.parametrize('op', OPS)
def test_signature_is_keyword_only_with_required_group(op):
    args = valid_args()
    del args['group']
    name = op.__name__
    with pytest.raises(TypeError, match=f'^{name}\\(\\) missing 1 required keyword-only argument'):
        op(**args)
    with pytest.raises(TypeError, match=f'^{name}\\(\\) takes 2 positional arguments'):
        op(args['input'], args['offset_mask'], 3, 3, 1, 1, 1, 1, 1, 1, 2, 4, 1.0, 256, False)


def test_check_dcnv4_args_returns_the_schema_params():
    args = valid_args()
    params = check_dcnv4_args(
        args['input'], args['offset_mask'], **KWARGS, offset_scale=1, remove_center=False
    )
    assert isinstance(params, DCNv4Params)
    assert params == (3, 3, 1, 1, 1, 1, 1, 1, 2, 4, 1.0, False)
    assert isinstance(params.offset_scale, float)


@pytest.mark.needs_extension
def test_kernel_checks_defend_themselves():
    """The C++ checks, called directly (bypassing the Python wrapper), name the argument."""
    input = torch.rand(2, 5, 6, 8)
    params = (3, 3, 1, 1, 1, 1, 1, 1, 2, 4, 1.0, False)
    with pytest.raises(RuntimeError, match='offset_mask` with a last dimension of at least'):
        torch.ops.ops_dcnv3.dcnv4_forward(input, torch.rand(2, 5, 6, 50), *params)
    with pytest.raises(RuntimeError, match='expected `offset_mask` of shape'):
        torch.ops.ops_dcnv3.dcnv4_forward(input, torch.rand(2, 4, 6, 56), *params)
    with pytest.raises(RuntimeError, match='expected `grad_output` of shape'):
        torch.ops.ops_dcnv3.dcnv4_backward(
            input, torch.rand(2, 5, 6, 56), torch.rand(2, 5, 6, 4), *params
        )
