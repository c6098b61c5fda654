"""The DCNv3 core operator: argument checks, the compiled op and its torch.library registration.

``ops_dcnv3._C`` (built by setup.py) defines ``ops_dcnv3::dcnv3_forward`` and
``ops_dcnv3::dcnv3_backward`` with CPU/CUDA kernels. This module adds what the compiler and
autograd need on top (fake kernels and the autograd formula) and the user-facing wrapper
:func:`dcnv3`, which validates its arguments because the kernels only defend themselves.
"""

import importlib
from typing import Optional, Tuple

import torch
from torch import Tensor

__all__ = [
    'dcnv3',
    'check_dcnv3_args',
    'dcnv3_output_size',
    'extension_available',
    'MAX_SOFTMAX_POINTS',
]

_BUILD_HINT = (
    'build it in place with `python setup.py build_ext --inplace` '
    '(or `pip install -e .`) from the repository root'
)

try:  # importing _C registers torch.ops.ops_dcnv3.*; keep the package usable without it
    _C = importlib.import_module(f'{__package__}._C')
    _C_IMPORT_ERROR: Optional[BaseException] = None
except (ImportError, OSError) as err:
    _C = None
    _C_IMPORT_ERROR = err

# Points per group the kernels can softmax themselves (kMaxSoftmaxPoints in csrc/).
MAX_SOFTMAX_POINTS = 64

# dtypes the kernels are compiled for (csrc/ dispatches all four on CPU and CUDA).
_KERNEL_DTYPES = {
    'cpu': (torch.float32, torch.float64, torch.float16, torch.bfloat16),
    'cuda': (torch.float32, torch.float64, torch.float16, torch.bfloat16),
}


def extension_available() -> bool:
    """Whether the compiled extension ``ops_dcnv3._C`` was imported."""
    return _C is not None


def _has_kernel(device_type: str) -> bool:
    dispatch_key = {'cpu': 'CPU', 'cuda': 'CUDA'}.get(device_type)
    return dispatch_key is not None and torch._C._dispatch_has_kernel_for_dispatch_key(
        'ops_dcnv3::dcnv3_forward', dispatch_key
    )


# Looked up once: the compiled-op path must stay free of calls dynamo cannot trace.
_DEVICES_WITH_KERNELS = frozenset(d for d in _KERNEL_DTYPES if _C is not None and _has_kernel(d))


def dcnv3_output_size(size: int, kernel: int, stride: int, pad: int, dilation: int) -> int:
    """Output length along one axis: ``(size + 2*pad - (dilation*(kernel-1)+1)) // stride + 1``."""
    return (size + 2 * pad - (dilation * (kernel - 1) + 1)) // stride + 1


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f'{name} must be an int, got {type(value).__name__}')
    if value < minimum:
        raise ValueError(f'{name} must be >= {minimum}, got {value}')


def _check_shape(name: str, tensor: Tensor, expected: Tuple[int, ...], layout: str) -> None:
    if tuple(tensor.shape) != expected:
        raise ValueError(f'{name} must have shape {layout} = {expected}, got {tuple(tensor.shape)}')


def check_dcnv3_args(
    input: Tensor,
    offset: Tensor,
    mask: Tensor,
    kernel_h: int,
    kernel_w: int,
    stride_h: int,
    stride_w: int,
    pad_h: int,
    pad_w: int,
    dilation_h: int,
    dilation_w: int,
    group: int,
    group_channels: int,
    offset_scale: float,
    im2col_step: int,
    remove_center: bool,
    softmax_mask: bool = False,
    kernel_dtypes: bool = False,
) -> Tuple[int, int]:
    """Validates :func:`dcnv3` arguments and returns the output size ``(out_h, out_w)``.

    Raises ``TypeError``/``ValueError`` naming the offending argument. Only shapes, dtypes,
    devices and Python numbers are inspected (never tensor values), so the checks trace
    under ``torch.compile(fullgraph=True)``.

    Args:
        softmax_mask (bool): Whether ``mask`` holds logits to be softmax-normalised over each
            group's points. Defaults to False.
        kernel_dtypes (bool): Also apply the compiled kernels' limits: a dtype they support on
            the input's device, and at most ``MAX_SOFTMAX_POINTS`` points per group with
            ``softmax_mask``. Defaults to False (the reference has neither limit).
    """
    for name, tensor in (('input', input), ('offset', offset), ('mask', mask)):
        if not isinstance(tensor, Tensor):
            raise TypeError(f'{name} must be a torch.Tensor, got {type(tensor).__name__}')
        if tensor.dim() != 4:
            raise ValueError(
                f'{name} must be a 4-D channels-last tensor, got {tensor.dim()}-D '
                f'with shape {tuple(tensor.shape)}'
            )
    if not input.is_floating_point():
        raise TypeError(f'input must be a floating-point tensor, got {input.dtype}')
    for name, tensor in (('offset', offset), ('mask', mask)):
        if tensor.dtype != input.dtype:
            raise TypeError(
                f'{name} must have the dtype of input ({input.dtype}), got {tensor.dtype}'
            )
        if tensor.device != input.device:
            raise ValueError(
                f'{name} must be on the device of input ({input.device}), got {tensor.device}'
            )
    if kernel_dtypes:
        supported = _KERNEL_DTYPES.get(input.device.type, ())
        if input.dtype not in supported:
            raise TypeError(
                f'input dtype {input.dtype} is not supported by the compiled DCNv3 '
                f'op on {input.device.type}; supported: '
                f'{[str(d) for d in supported]}'
            )

    for name, value, minimum in (
        ('kernel_h', kernel_h, 1),
        ('kernel_w', kernel_w, 1),
        ('stride_h', stride_h, 1),
        ('stride_w', stride_w, 1),
        ('pad_h', pad_h, 0),
        ('pad_w', pad_w, 0),
        ('dilation_h', dilation_h, 1),
        ('dilation_w', dilation_w, 1),
        ('group', group, 1),
        ('group_channels', group_channels, 1),
        ('im2col_step', im2col_step, 1),
    ):
        _check_int(name, value, minimum)
    # `abs(x) < inf` rejects inf and nan and, unlike math.isfinite, traces with symbolic floats.
    if (
        isinstance(offset_scale, bool)
        or not isinstance(offset_scale, (int, float))
        or not abs(offset_scale) < float('inf')
    ):
        raise TypeError(f'offset_scale must be a finite float, got {offset_scale!r}')
    for name, flag in (('remove_center', remove_center), ('softmax_mask', softmax_mask)):
        if not isinstance(flag, (bool, int)) or flag not in (0, 1):
            raise TypeError(f'{name} must be a bool, got {flag!r}')
    if remove_center and (kernel_h % 2 == 0 or kernel_w % 2 == 0):
        raise ValueError(
            'remove_center requires odd kernel_h and kernel_w (the centre point must '
            f'exist), got kernel_h={kernel_h}, kernel_w={kernel_w}'
        )
    num_points = kernel_h * kernel_w - int(remove_center)
    if num_points < 1:
        raise ValueError('remove_center with kernel_h = kernel_w = 1 leaves no sampling point')
    if kernel_dtypes and softmax_mask and num_points > MAX_SOFTMAX_POINTS:
        raise ValueError(
            f'softmax_mask=True supports at most {MAX_SOFTMAX_POINTS} sampling points '
            f'per group in the compiled op, got {num_points}; apply the softmax to '
            'the mask before the op instead'
        )

    batch, height, width, channels = input.shape
    if channels != group * group_channels:
        raise ValueError(
            f'input channels ({channels}) must equal group * group_channels '
            f'= {group} * {group_channels} = {group * group_channels}'
        )
    out_h = dcnv3_output_size(height, kernel_h, stride_h, pad_h, dilation_h)
    out_w = dcnv3_output_size(width, kernel_w, stride_w, pad_w, dilation_w)
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f'input spatial size (H, W) = ({height}, {width}) is too small for kernel '
            f'({kernel_h}, {kernel_w}), dilation ({dilation_h}, {dilation_w}) and pad '
            f'({pad_h}, {pad_w}): the output would be ({out_h}, {out_w})'
        )
    _check_shape(
        'offset',
        offset,
        (batch, out_h, out_w, group * num_points * 2),
        '(N, H_out, W_out, group * K * 2)',
    )
    _check_shape(
        'mask', mask, (batch, out_h, out_w, group * num_points), '(N, H_out, W_out, group * K)'
    )
    return out_h, out_w


def dcnv3(
    input: Tensor,
    offset: Tensor,
    mask: Tensor,
    kernel_h: int,
    kernel_w: int,
    stride_h: int,
    stride_w: int,
    pad_h: int,
    pad_w: int,
    dilation_h: int,
    dilation_w: int,
    group: int,
    group_channels: int,
    offset_scale: float,
    im2col_step: int,
    remove_center: bool,
    softmax_mask: bool = False,
) -> Tensor:
    """DCNv3 core operator (compiled kernels), differentiable in input, offset and mask.

    Tensors are channels-last: ``input`` (N, H, W, group*group_channels); ``offset``
    (N, H_out, W_out, group*K*2) holding per group g and point k the pair (dx, dy) at
    ``g*K*2 + k*2 + {0, 1}``; ``mask`` (N, H_out, W_out, group*K), the point weights at
    ``g*K + k``: already normalised (softmax) by the caller or, with ``softmax_mask=True``,
    logits that the kernels softmax over each group's K points themselves. Fusing saves the
    separate softmax pass and its backward; it allows at most ``MAX_SOFTMAX_POINTS`` points,
    and the mask gradient is then that of the logits. K = kernel_h*kernel_w, minus one with
    ``remove_center``. Point order is ``k = i_x*kernel_h + i_y``. See DESIGN.md section 2
    and :func:`ops_dcnv3.dcnv3_reference` for the exact definition.

    ``im2col_step`` is accepted for compatibility with released code and validated (> 0);
    it does not constrain the batch size.

    Returns:
        Tensor: (N, H_out, W_out, group*group_channels), dtype of ``input``.
    """
    if _C is None:
        raise RuntimeError(
            f'the compiled DCNv3 extension ops_dcnv3._C is not available '
            f'({_C_IMPORT_ERROR}); {_BUILD_HINT}. The pure-PyTorch '
            'ops_dcnv3.dcnv3_reference (or DCNv3(use_reference=True)) '
            'works without it.'
        )
    check_dcnv3_args(
        input,
        offset,
        mask,
        kernel_h,
        kernel_w,
        stride_h,
        stride_w,
        pad_h,
        pad_w,
        dilation_h,
        dilation_w,
        group,
        group_channels,
        offset_scale,
        im2col_step,
        remove_center,
        softmax_mask,
        kernel_dtypes=True,
    )
    if input.device.type not in _DEVICES_WITH_KERNELS:
        raise RuntimeError(
            f'ops_dcnv3._C was built without {input.device.type} kernels; '
            f'rebuild it (FORCE_CUDA=1 for CUDA): {_BUILD_HINT}'
        )
    return torch.ops.ops_dcnv3.dcnv3_forward(
        input.contiguous(),
        offset.contiguous(),
        mask.contiguous(),
        kernel_h,
        kernel_w,
        stride_h,
        stride_w,
        pad_h,
        pad_w,
        dilation_h,
        dilation_w,
        group,
        group_channels,
        float(offset_scale),
        im2col_step,
        bool(remove_center),
        bool(softmax_mask),
    )


# --- torch.library registration: fake kernels for tracing, autograd formula -----------------


def _fake_forward(
    input,
    offset,
    mask,
    kernel_h,
    kernel_w,
    stride_h,
    stride_w,
    pad_h,
    pad_w,
    dilation_h,
    dilation_w,
    group,
    group_channels,
    offset_scale,
    im2col_step,
    remove_center,
    softmax_mask=False,
):
    out_h = dcnv3_output_size(input.shape[1], kernel_h, stride_h, pad_h, dilation_h)
    out_w = dcnv3_output_size(input.shape[2], kernel_w, stride_w, pad_w, dilation_w)
    return input.new_empty((input.shape[0], out_h, out_w, input.shape[3]))


def _fake_backward(input, offset, mask, grad_output, *params):
    # The kernels return fresh contiguous gradients.
    return input.new_empty(input.shape), offset.new_empty(offset.shape), mask.new_empty(mask.shape)


def _setup_context(ctx, inputs, output):
    input, offset, mask = inputs[:3]
    ctx.save_for_backward(input, offset, mask)
    ctx.params = inputs[3:]


def _backward(ctx, grad_output):
    input, offset, mask = ctx.saved_tensors
    grad_input, grad_offset, grad_mask = torch.ops.ops_dcnv3.dcnv3_backward(
        input, offset, mask, grad_output.contiguous(), *ctx.params
    )
    return (grad_input, grad_offset, grad_mask) + (None,) * len(ctx.params)


def _register() -> None:
    torch.library.register_fake('ops_dcnv3::dcnv3_forward')(_fake_forward)
    torch.library.register_fake('ops_dcnv3::dcnv3_backward')(_fake_backward)
    torch.library.register_autograd(
        'ops_dcnv3::dcnv3_forward', _backward, setup_context=_setup_context
    )


if _C is not None:
    _register()
