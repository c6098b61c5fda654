"""ops_dcnv3.compat: the official positional signatures against the keyword API."""

import pytest
import torch

from ops_dcnv3 import dcnv3, dcnv3_reference
from ops_dcnv3.compat import DCNv3Function, dcnv3_core_pytorch
from ops_dcnv3.testing import DCNv3Config, make_inputs
from tests.ops.op_runs import forward_backward

# Asymmetric in every per-axis argument, so a swapped h/w pair shows.
CFG = DCNv3Config(
    kernel_size=(3, 5),
    stride=(2, 1),
    padding=(1, 2),
    dilation=(2, 1),
    group=2,
    group_channels=4,
    offset_scale=1.5,
    remove_center=True,
)


def official_args(cfg, im2col_step=None):
    """The official positional arguments after (input, offset, mask): ``kernel_h, kernel_w,
    stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, group, group_channels,
    offset_scale, [im2col_step,] remove_center``."""
    args = cfg.schema_args
    steps = () if im2col_step is None else (im2col_step,)
    return (*args[:-1], *steps, args[-1])


def inputs(dtype=torch.float64):
    return make_inputs(CFG, 2, 9, 8, dtype=dtype)


def test_dcnv3_core_pytorch_is_the_reference():
    input, offset, mask = inputs()
    out, grads, grad_output = forward_backward(
        lambda *tensors, **_: dcnv3_core_pytorch(*tensors, *official_args(CFG)),
        input,
        offset,
        mask,
        CFG,
    )
    expected, expected_grads, _ = forward_backward(
        dcnv3_reference, input, offset, mask, CFG, grad_output
    )
    torch.testing.assert_close(out, expected, atol=0, rtol=0)
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad, atol=0, rtol=0)


@pytest.mark.needs_extension
@pytest.mark.parametrize('im2col_step', [1, 64, 256])
def test_dcnv3_function_apply_is_the_compiled_op(im2col_step):
    input, offset, mask = inputs()
    out, grads, grad_output = forward_backward(
        lambda *tensors, **_: DCNv3Function.apply(*tensors, *official_args(CFG, im2col_step)),
        input,
        offset,
        mask,
        CFG,
    )
    expected, expected_grads, _ = forward_backward(dcnv3, input, offset, mask, CFG, grad_output)
    torch.testing.assert_close(out, expected, atol=0, rtol=0)
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad, atol=0, rtol=0)


@pytest.mark.parametrize(
    'im2col_step, error, pattern',
    [
        (0, ValueError, 'im2col_step must be >= 1, got 0'),
        (-64, ValueError, 'im2col_step must be >= 1'),
        (True, TypeError, 'im2col_step must be an int, got bool'),
        (64.0, TypeError, 'im2col_step must be an int, got float'),
    ],
)
def test_dcnv3_function_validates_im2col_step(im2col_step, error, pattern):
    with pytest.raises(error, match=pattern):
        DCNv3Function.apply(*inputs(), *official_args(CFG, im2col_step))


def test_group_channels_must_match_the_input():
    args = list(official_args(CFG))
    args[9] = 8  # group_channels; the input has group * 4 channels
    with pytest.raises(ValueError, match=r'group_channels must equal .* = 8 / 2 = 4, got 8'):
        dcnv3_core_pytorch(*inputs(), *args)
    args.insert(11, 64)
    with pytest.raises(ValueError, match='group_channels must equal'):
        DCNv3Function.apply(*inputs(), *args)


def test_other_bad_arguments_are_reported_by_the_keyword_op():
    args = list(official_args(CFG))
    args[8] = 0  # group
    with pytest.raises(ValueError, match='group must be >= 1'):
        dcnv3_core_pytorch(*inputs(), *args)
    args = list(official_args(CFG))
    args[1] = 0  # kernel_w
    with pytest.raises(ValueError, match=r'kernel_size must be >= 1, got \(3, 0\)'):
        dcnv3_core_pytorch(*inputs(), *args)
