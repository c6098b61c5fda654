"""The DCNv3 core operator: argument checks, the compiled op and its torch.library registration.

``ops_dcnv3._C`` (built by setup.py) defines ``ops_dcnv3::dcnv3_forward`` and
``ops_dcnv3::dcnv3_backward`` with CPU/CUDA kernels. This module adds what the compiler and
autograd need on top (fake kernels and the autograd formula) and the user-facing wrapper
:func:`dcnv3`, which validates its arguments because the kernels only defend themselves.
"""

import importlib
from typing import Dict, NamedTuple, Optional, Tuple, Union

import torch
from torch import Tensor

__all__ = [
    'dcnv3',
    'check_dcnv3_args',
    'DCNv3Params',
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

# Points per group the kernels can softmax themselves: kMaxSoftmaxPoints of csrc/, exported by
# the extension. None without it (the reference has no such limit).
MAX_SOFTMAX_POINTS: Optional[int] = getattr(_C, 'max_softmax_points', None)

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
    """Output length along one axis (the one Python definition; csrc/ has its C++ twin).

    Args:
        size (int): Input length along the axis.
        kernel (int): Kernel size along the axis.
        stride (int): Stride along the axis.
        pad (int): Zero padding on each side along the axis.
        dilation (int): Dilation of the kernel grid along the axis.

    Returns:
        int: ``(size + 2*pad - (dilation*(kernel-1)+1)) // stride + 1`` (< 1 when the dilated
        kernel does not fit the padded input).
    """
    return (size + 2 * pad - (dilation * (kernel - 1) + 1)) // stride + 1


IntPair = Union[int, Tuple[int, int]]


class DCNv3Params(NamedTuple):
    """Validated hyper-parameters of one call, per axis, in the order of the compiled op's
    schema: ``torch.ops.ops_dcnv3.dcnv3_forward(input, offset, mask, *params)``."""

    kernel_h: int
    kernel_w: int
    stride_h: int
    stride_w: int
    pad_h: int
    pad_w: int
    dilation_h: int
    dilation_w: int
    group: int
    group_channels: int
    offset_scale: float
    remove_center: bool
    softmax_mask: bool


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f'{name} must be an int, got {type(value).__name__}')
    if value < minimum:
        raise ValueError(f'{name} must be >= {minimum}, got {value}')


def _pair(name: str, value: IntPair, minimum: int) -> Tuple[int, int]:
    """``value`` (an int, or an (h, w) pair of ints) as ``(h, w)``, each at least ``minimum``."""
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in pair):
        raise TypeError(f'{name} must be an int or an (h, w) pair of ints, got {value!r}')
    if pair[0] < minimum or pair[1] < minimum:
        raise ValueError(f'{name} must be >= {minimum}, got {value!r}')
    return pair


def _check_shape(name: str, tensor: Tensor, expected: Tuple[int, ...], layout: str) -> None:
    if tuple(tensor.shape) != expected:
        raise ValueError(f'{name} must have shape {layout} = {expected}, got {tuple(tensor.shape)}')


def _check_tensors(input: Tensor, others: Dict[str, Tensor], compiled: bool, op: str) -> None:
    """Types, ranks, dtypes and devices of ``input`` and the ``others`` (name: tensor) of
    operator ``op`` ('DCNv3' or 'DCNv4'); with ``compiled``, also what the compiled op needs:
    the extension, and kernels for the device and dtype."""
    if compiled and _C is None:
        raise RuntimeError(
            f'the compiled {op} extension ops_dcnv3._C is not available '
            f'({_C_IMPORT_ERROR}); {_BUILD_HINT}. The pure-PyTorch '
            f'ops_dcnv3.{op.lower()}_reference (or {op}(use_reference=True)) '
            'works without it.'
        )
    for name, tensor in (('input', input), *others.items()):
        if not isinstance(tensor, Tensor):
            raise TypeError(f'{name} must be a torch.Tensor, got {type(tensor).__name__}')
        if tensor.dim() != 4:
            raise ValueError(
                f'{name} must be a 4-D channels-last tensor, got {tensor.dim()}-D '
                f'with shape {tuple(tensor.shape)}'
            )
    if not input.is_floating_point():
        raise TypeError(f'input must be a floating-point tensor, got {input.dtype}')
    for name, tensor in others.items():
        if tensor.dtype != input.dtype:
            raise TypeError(
                f'{name} must have the dtype of input ({input.dtype}), got {tensor.dtype}'
            )
        if tensor.device != input.device:
            raise ValueError(
                f'{name} must be on the device of input ({input.device}), got {tensor.device}'
            )
    if compiled:
        supported = _KERNEL_DTYPES.get(input.device.type, ())
        if input.dtype not in supported:
            raise TypeError(
                f'input dtype {input.dtype} is not supported by the compiled {op} '
                f'op on {input.device.type}; supported: '
                f'{[str(d) for d in supported]}'
            )
        if input.device.type not in _DEVICES_WITH_KERNELS:
            raise RuntimeError(
                f'ops_dcnv3._C was built without {input.device.type} kernels; '
                f'rebuild it (FORCE_CUDA=1 for CUDA): {_BUILD_HINT}'
            )


class _Geometry(NamedTuple):
    """Checked hyper-parameters shared by both operators, and the sizes they imply."""

    axes: Tuple[int, ...]  # kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w
    num_points: int
    out_h: int
    out_w: int
    group_channels: int
    offset_scale: float
    remove_center: bool

    def params(self, group: int) -> tuple:
        """The schema's hyper-parameters both operators share, in schema order."""
        return (*self.axes, group, self.group_channels, self.offset_scale, self.remove_center)


def _check_geometry(
    input: Tensor,
    *,
    kernel_size: IntPair,
    stride: IntPair,
    padding: IntPair,
    dilation: IntPair,
    group: int,
    offset_scale: float,
    remove_center: bool,
    flags: Dict[str, bool],
) -> _Geometry:
    """The checks of the hyper-parameters both operators share, and of the operator's own bool
    ``flags`` (by name), against an already checked ``input``."""
    kernel_h, kernel_w = _pair('kernel_size', kernel_size, 1)
    stride_h, stride_w = _pair('stride', stride, 1)
    pad_h, pad_w = _pair('padding', padding, 0)
    dilation_h, dilation_w = _pair('dilation', dilation, 1)
    _check_int('group', group, 1)
    # `abs(x) < inf` rejects inf and nan and, unlike math.isfinite, traces with symbolic floats.
    if (
        isinstance(offset_scale, bool)
        or not isinstance(offset_scale, (int, float))
        or not abs(offset_scale) < float('inf')
    ):
        raise TypeError(f'offset_scale must be a finite float, got {offset_scale!r}')
    for name, flag in {'remove_center': remove_center, **flags}.items():
        if not isinstance(flag, (bool, int)) or flag not in (0, 1):
            raise TypeError(f'{name} must be a bool, got {flag!r}')
    if remove_center and (kernel_h % 2 == 0 or kernel_w % 2 == 0):
        raise ValueError(
            'remove_center requires an odd kernel_size (the centre point must exist), '
            f'got kernel_size={kernel_size!r}'
        )
    num_points = kernel_h * kernel_w - int(remove_center)
    if num_points < 1:
        raise ValueError('remove_center with kernel_size 1 leaves no sampling point')

    height, width, channels = input.shape[1:]
    if channels % group != 0:
        raise ValueError(f'input channels ({channels}) must be divisible by group ({group})')
    out_h = dcnv3_output_size(height, kernel_h, stride_h, pad_h, dilation_h)
    out_w = dcnv3_output_size(width, kernel_w, stride_w, pad_w, dilation_w)
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f'input spatial size (H, W) = ({height}, {width}) is too small for kernel_size '
            f'({kernel_h}, {kernel_w}), dilation ({dilation_h}, {dilation_w}) and padding '
            f'({pad_h}, {pad_w}): the output would be ({out_h}, {out_w})'
        )
    axes = (kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w)
    return _Geometry(
        axes, num_points, out_h, out_w, channels // group, float(offset_scale), bool(remove_center)
    )


def check_dcnv3_args(
    input: Tensor,
    offset: Tensor,
    mask: Tensor,
    *,
    softmax_mask: bool,
    compiled: bool = False,
    **hyper,
) -> DCNv3Params:
    """Validates the arguments of :func:`dcnv3` / :func:`dcnv3_reference`.

    Raises ``TypeError``/``ValueError`` naming the offending argument. Only shapes, dtypes,
    devices and Python numbers are inspected (never tensor values), so the checks trace
    under ``torch.compile(fullgraph=True)``. The arguments are those of :func:`dcnv3`, all
    required here (``hyper``: kernel_size, stride, padding, dilation, group, offset_scale
    and remove_center).

    Args:
        input (Tensor): (N, H, W, C), floating point.
        offset (Tensor): (N, H_out, W_out, group * K * 2), dtype and device of ``input``.
        mask (Tensor): (N, H_out, W_out, group * K), dtype and device of ``input``.
        kernel_size (int or (int, int)): Kernel size (h, w), each >= 1.
        stride (int or (int, int)): Stride (h, w), each >= 1.
        padding (int or (int, int)): Zero padding (h, w), each >= 0.
        dilation (int or (int, int)): Dilation of the kernel grid (h, w), each >= 1.
        group (int): Number of groups; must divide C.
        offset_scale (float): Finite scale of kernel grid and offsets.
        remove_center (bool): Drop the centre point (needs odd kernel sizes).
        softmax_mask (bool): ``mask`` holds logits to be softmax-normalised over each group's
            points.
        compiled (bool): Also apply the compiled op's requirements: the extension is built,
            has kernels for the input's device and dtype, and with ``softmax_mask`` at most
            ``MAX_SOFTMAX_POINTS`` points per group. Defaults to False (the reference has
            none of these limits).

    Returns:
        DCNv3Params: The hyper-parameters per axis, with ``group_channels = C // group``.
    """
    _check_tensors(input, {'offset': offset, 'mask': mask}, compiled, 'DCNv3')
    geo = _check_geometry(input, flags={'softmax_mask': softmax_mask}, **hyper)
    if compiled and softmax_mask and geo.num_points > MAX_SOFTMAX_POINTS:
        raise ValueError(
            f'softmax_mask=True supports at most {MAX_SOFTMAX_POINTS} sampling points '
            f'per group in the compiled op, got {geo.num_points}; apply the softmax to '
            'the mask before the op instead'
        )
    out_shape = (input.shape[0], geo.out_h, geo.out_w)
    group = hyper['group']
    _check_shape(
        'offset',
        offset,
        (*out_shape, group * geo.num_points * 2),
        '(N, H_out, W_out, group * K * 2)',
    )
    _check_shape('mask', mask, (*out_shape, group * geo.num_points), '(N, H_out, W_out, group * K)')
    return DCNv3Params(*geo.params(group), bool(softmax_mask))


def autocast_inputs(*tensors: Tensor) -> Tuple[Tensor, ...]:
    """The op's inputs as ``torch.autocast`` would hand them to a convolution.

    Inside an autocast region of the tensors' device the compiled ops compute in its dtype
    (bfloat16 on the CPU by default, float16 on CUDA), as convolutions and linears do: the
    float32 / float16 / bfloat16 inputs are cast to it, so inputs that autocast left in
    different dtypes (say a bfloat16 linear output and a float32 offset) are accepted. The
    cast is differentiable: float32 inputs get float32 gradients. float64 and everything
    outside autocast is left as it is.
    """
    if not all(isinstance(t, Tensor) for t in tensors):
        return tensors  # the argument checks that follow name what is wrong
    device_type = tensors[0].device.type
    if device_type not in ('cpu', 'cuda') or not torch.is_autocast_enabled(device_type):
        return tensors
    dtype = torch.get_autocast_dtype(device_type)
    return tuple(
        t.to(dtype) if t.is_floating_point() and t.dtype != torch.float64 else t for t in tensors
    )


DCNV3_ARGS_DOC = """
    Args:
        input (Tensor): (N, H, W, C), floating point (the compiled op: float32, float64,
            float16 or bfloat16).
        offset (Tensor): (N, H_out, W_out, group * K * 2), dtype and device of ``input``.
        mask (Tensor): (N, H_out, W_out, group * K), dtype and device of ``input``.
        kernel_size (int or (int, int)): Kernel size (h, w). Defaults to 3.
        stride (int or (int, int)): Stride (h, w). Defaults to 1.
        padding (int or (int, int)): Zero padding (h, w). Defaults to 1.
        dilation (int or (int, int)): Dilation of the kernel grid (h, w). Defaults to 1.
        group (int): Number of groups (required); must divide C, and
            ``group_channels = C // group``.
        offset_scale (float): Scale applied to kernel grid and offsets. Defaults to 1.0.
        remove_center (bool): Drop the kernel's centre point (odd kernel sizes). Defaults to
            False.
        softmax_mask (bool): ``mask`` holds logits, softmax-normalised over each group's K
            points first. Defaults to False.

    Returns:
        Tensor: (N, H_out, W_out, C), dtype of ``input``.
"""


def dcnv3(
    input: Tensor,
    offset: Tensor,
    mask: Tensor,
    *,
    kernel_size: IntPair = 3,
    stride: IntPair = 1,
    padding: IntPair = 1,
    dilation: IntPair = 1,
    group: int,
    offset_scale: float = 1.0,
    remove_center: bool = False,
    softmax_mask: bool = False,
) -> Tensor:
    """DCNv3 core operator (compiled kernels), differentiable in input, offset and mask.

    Tensors are channels-last: ``input`` (N, H, W, C) with C = group * group_channels;
    ``offset`` (N, H_out, W_out, group*K*2) holding per group g and point k the pair (dx, dy)
    at ``g*K*2 + k*2 + {0, 1}``; ``mask`` (N, H_out, W_out, group*K), the point weights at
    ``g*K + k``: already normalised (softmax) by the caller or, with ``softmax_mask=True``,
    logits that the kernels softmax over each group's K points themselves. Fusing saves the
    separate softmax pass and its backward; it allows at most ``MAX_SOFTMAX_POINTS`` points,
    and the mask gradient is then that of the logits. K = kernel_h*kernel_w, minus one with
    ``remove_center``. Point order is ``k = i_x*kernel_h + i_y``. See docs/dcnv3.md and
    :func:`ops_dcnv3.dcnv3_reference` for the exact definition. Under ``torch.autocast`` it
    computes in the autocast dtype (:func:`autocast_inputs`).
    """
    input, offset, mask = autocast_inputs(input, offset, mask)
    params = check_dcnv3_args(
        input,
        offset,
        mask,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        group=group,
        offset_scale=offset_scale,
        remove_center=remove_center,
        softmax_mask=softmax_mask,
        compiled=True,
    )
    return torch.ops.ops_dcnv3.dcnv3_forward(
        input.contiguous(), offset.contiguous(), mask.contiguous(), *params
    )


# The argument list is shared with dcnv3_reference (ops_dcnv3.reference).
dcnv3.__doc__ = f'{dcnv3.__doc__.rstrip()}\n{DCNV3_ARGS_DOC}'


# --- torch.library registration: fake kernels for tracing, autograd formula -----------------


def _fake_forward(input: Tensor, *params) -> Tensor:
    """Output of the forward ops for ``input`` and the schema's hyper-parameters ``params``."""
    kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w = params[:8]
    out_h = dcnv3_output_size(input.shape[1], kernel_h, stride_h, pad_h, dilation_h)
    out_w = dcnv3_output_size(input.shape[2], kernel_w, stride_w, pad_w, dilation_w)
    return input.new_empty((input.shape[0], out_h, out_w, input.shape[3]))


def _register_op(name: str, num_tensors: int) -> None:
    """Fake kernels and autograd of ``ops_dcnv3::{name}_forward`` / ``{name}_backward``, whose
    schemas take ``num_tensors`` differentiable tensors, then (backward: grad_output, then)
    the hyper-parameters; the backward returns the tensors' gradients in order."""
    backward_op = getattr(torch.ops.ops_dcnv3, f'{name}_backward')

    def fake_forward(*args):
        return _fake_forward(args[0], *args[num_tensors:])

    def fake_backward(*args):
        # The kernels return fresh contiguous gradients.
        return tuple(t.new_empty(t.shape) for t in args[:num_tensors])

    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs[:num_tensors])
        ctx.params = inputs[num_tensors:]

    def backward(ctx, grad_output):
        grads = backward_op(*ctx.saved_tensors, grad_output.contiguous(), *ctx.params)
        return (*grads, *(None,) * len(ctx.params))

    torch.library.register_fake(f'ops_dcnv3::{name}_forward')(fake_forward)
    torch.library.register_fake(f'ops_dcnv3::{name}_backward')(fake_backward)
    torch.library.register_autograd(
        f'ops_dcnv3::{name}_forward', backward, setup_context=setup_context
    )


if _C is not None:
    _register_op('dcnv3', num_tensors=3)
    _register_op('dcnv4', num_tensors=2)
