"""The DCNv4 core operator: DCNv3's sampling with one packed offset+weight tensor, no softmax.

``ops_dcnv3._C`` defines ``ops_dcnv3::dcnv4_forward`` / ``dcnv4_backward`` with the same CPU and
CUDA kernels as DCNv3 (only where a point's offsets and weight are read differs); the fake
kernels and autograd are registered by :mod:`ops_dcnv3.functional`. This module holds the
keyword API :func:`dcnv4`, its checks, the pure-PyTorch :func:`dcnv4_reference` and the
packing helpers. See docs/dcnv4.md.

The packed layout is the one of the official DCNv4 module (``offset_mask`` Linear): for
output pixel p, the last dimension holds, per group g at ``g*K*3``, the K offset pairs
``(dx, dy)`` followed by the K point weights; the official module pads the last dimension
up to a multiple of 8 (:func:`dcnv4_offset_mask_channels`). Entries past ``group*K*3`` are
ignored (their gradient is zero).
"""

import math
from typing import NamedTuple, Tuple

import torch
from torch import Tensor

from .functional import DCNv3Params, IntPair, _check_geometry, _check_tensors, autocast_inputs
from .reference import _dcnv3_reference

__all__ = [
    'dcnv4',
    'dcnv4_reference',
    'check_dcnv4_args',
    'DCNv4Params',
    'dcnv4_offset_mask_channels',
    'pack_offset_mask',
    'unpack_offset_mask',
]


# DCNv3Params without softmax_mask.
DCNv4Params = NamedTuple(
    'DCNv4Params', [(f, DCNv3Params.__annotations__[f]) for f in DCNv3Params._fields[:-1]]
)
DCNv4Params.__doc__ = """Validated hyper-parameters of one DCNv4 call, in the order of the
compiled op's schema: ``torch.ops.ops_dcnv3.dcnv4_forward(input, offset_mask, *params)``
(:class:`ops_dcnv3.DCNv3Params` without ``softmax_mask``)."""


def dcnv4_offset_mask_channels(group: int, num_points: int) -> int:
    """Last dimension of the official module's ``offset_mask``: ``group * K * 3`` rounded up
    to a multiple of 8.

    Args:
        group (int): Number of groups G.
        num_points (int): Sampling points per group K (kernel_h * kernel_w, minus one with
            remove_center).
    """
    return int(math.ceil(group * num_points * 3 / 8) * 8)


def unpack_offset_mask(offset_mask: Tensor, group: int, num_points: int) -> Tuple[Tensor, Tensor]:
    """DCNv3-layout ``(offset, mask)`` views of a packed ``offset_mask`` (padding dropped).

    Args:
        offset_mask (Tensor): (N, H_out, W_out, P), P >= group * K * 3.
        group (int): Number of groups G.
        num_points (int): Sampling points per group K.

    Returns:
        tuple: ``offset`` (N, H_out, W_out, G*K*2) and ``mask`` (N, H_out, W_out, G*K).
    """
    per_group = offset_mask[..., : group * num_points * 3].unflatten(-1, (group, num_points * 3))
    offset = per_group[..., : 2 * num_points].flatten(-2)
    mask = per_group[..., 2 * num_points :].flatten(-2)
    return offset, mask


def pack_offset_mask(offset: Tensor, mask: Tensor, group: int, channels: int = None) -> Tensor:
    """The packed ``offset_mask`` of DCNv3-layout ``offset`` and ``mask`` (inverse of
    :func:`unpack_offset_mask`), zero-padded to ``channels`` (default: the official module's
    :func:`dcnv4_offset_mask_channels`).

    Args:
        offset (Tensor): (N, H_out, W_out, G*K*2), pairs (dx, dy) per point.
        mask (Tensor): (N, H_out, W_out, G*K).
        group (int): Number of groups G.
        channels (int, optional): Last dimension of the result, >= G*K*3. Defaults to None.
    """
    num_points = mask.shape[-1] // group
    packed = torch.cat(
        [offset.unflatten(-1, (group, 2 * num_points)), mask.unflatten(-1, (group, num_points))],
        dim=-1,
    ).flatten(-2)
    if channels is None:
        channels = dcnv4_offset_mask_channels(group, num_points)
    return torch.nn.functional.pad(packed, (0, channels - packed.shape[-1]))


def check_dcnv4_args(
    input: Tensor, offset_mask: Tensor, *, compiled: bool = False, **hyper
) -> DCNv4Params:
    """Validates the arguments of :func:`dcnv4` / :func:`dcnv4_reference`.

    Raises ``TypeError``/``ValueError`` naming the offending argument; like
    :func:`ops_dcnv3.check_dcnv3_args` it inspects only shapes, dtypes, devices and Python
    numbers (so it traces under ``torch.compile(fullgraph=True)``). There is no limit on the
    channels per group or the batch size.

    Args:
        input (Tensor): (N, H, W, C), floating point.
        offset_mask (Tensor): (N, H_out, W_out, P) with P >= group * K * 3, dtype and device
            of ``input``.
        compiled (bool): Also apply the compiled op's requirements (the extension is built
            and has kernels for the input's device and dtype). Defaults to False.
        **hyper: kernel_size, stride, padding, dilation, group, offset_scale and
            remove_center, as for :func:`dcnv4`, all required here.

    Returns:
        DCNv4Params: The hyper-parameters per axis, with ``group_channels = C // group``.
    """
    _check_tensors(input, {'offset_mask': offset_mask}, compiled, 'DCNv4')
    geo = _check_geometry(input, flags={}, **hyper)
    group = hyper['group']
    needed = group * geo.num_points * 3
    expected = (input.shape[0], geo.out_h, geo.out_w)
    if tuple(offset_mask.shape[:3]) != expected or offset_mask.shape[3] < needed:
        raise ValueError(
            f'offset_mask must have shape (N, H_out, W_out, P) = ({", ".join(map(str, expected))}'
            f', P) with P >= group * K * 3 = {needed} (the official module pads P to '
            f'{dcnv4_offset_mask_channels(group, geo.num_points)}), got '
            f'{tuple(offset_mask.shape)}'
        )
    return DCNv4Params(*geo.params(group))


DCNV4_ARGS_DOC = """
    Args:
        input (Tensor): (N, H, W, C), floating point (the compiled op: float32, float64,
            float16 or bfloat16).
        offset_mask (Tensor): (N, H_out, W_out, P), P >= group * K * 3, dtype and device of
            ``input``: per group g at ``g*K*3`` the K pairs (dx, dy), then the K weights;
            entries past ``group*K*3`` are padding.
        kernel_size (int or (int, int)): Kernel size (h, w). Defaults to 3.
        stride (int or (int, int)): Stride (h, w). Defaults to 1.
        padding (int or (int, int)): Zero padding (h, w). Defaults to 1.
        dilation (int or (int, int)): Dilation of the kernel grid (h, w). Defaults to 1.
        group (int): Number of groups (required); must divide C, and
            ``group_channels = C // group`` (any value).
        offset_scale (float): Scale applied to kernel grid and offsets. Defaults to 1.0.
        remove_center (bool): Drop the kernel's centre point (odd kernel sizes). Defaults to
            False.

    Returns:
        Tensor: (N, H_out, W_out, C), dtype of ``input``.
"""


def dcnv4(
    input: Tensor,
    offset_mask: Tensor,
    *,
    kernel_size: IntPair = 3,
    stride: IntPair = 1,
    padding: IntPair = 1,
    dilation: IntPair = 1,
    group: int,
    offset_scale: float = 1.0,
    remove_center: bool = False,
) -> Tensor:
    """DCNv4 core operator (compiled kernels), differentiable in input and offset_mask.

    The DCNv3 operator (:func:`ops_dcnv3.dcnv3`, docs/dcnv3.md: same sampling locations,
    point order ``k = i_x*kernel_h + i_y``, bilinear sampling with zeros outside) with the
    offsets and the point weights read from one packed tensor and used as they are (no
    softmax). CPU and CUDA, any batch and any channels per group. Under ``torch.autocast`` it
    computes in the autocast dtype, as :func:`ops_dcnv3.dcnv3` does.
    """
    input, offset_mask = autocast_inputs(input, offset_mask)
    params = check_dcnv4_args(
        input,
        offset_mask,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        group=group,
        offset_scale=offset_scale,
        remove_center=remove_center,
        compiled=True,
    )
    return torch.ops.ops_dcnv3.dcnv4_forward(input.contiguous(), offset_mask.contiguous(), *params)


def dcnv4_reference(
    input: Tensor,
    offset_mask: Tensor,
    *,
    kernel_size: IntPair = 3,
    stride: IntPair = 1,
    padding: IntPair = 1,
    dilation: IntPair = 1,
    group: int,
    offset_scale: float = 1.0,
    remove_center: bool = False,
) -> Tensor:
    """Reference DCNv4 (pure PyTorch); same arguments and result as :func:`dcnv4`.

    Unpacks ``offset_mask`` into DCNv3's offset and mask (:func:`unpack_offset_mask`) and runs
    :func:`ops_dcnv3.dcnv3_reference`'s grid_sample definition without softmax.
    """
    params = check_dcnv4_args(
        input,
        offset_mask,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        group=group,
        offset_scale=offset_scale,
        remove_center=remove_center,
        compiled=False,
    )
    num_points = params.kernel_h * params.kernel_w - int(params.remove_center)
    offset, mask = unpack_offset_mask(offset_mask, params.group, num_points)
    return _dcnv3_reference(input, offset, mask, DCNv3Params(*params, False))


dcnv4.__doc__ = f'{dcnv4.__doc__.rstrip()}\n{DCNV4_ARGS_DOC}'
dcnv4_reference.__doc__ = f'{dcnv4_reference.__doc__.rstrip()}\n{DCNV4_ARGS_DOC}'
