"""Pure-PyTorch definition of the DCNv3 core operator (docs/dcnv3.md).

This is the specification the compiled kernels are tested against, so it favours being
obviously right over being fast: build every sampling location in pixel units, then let
``F.grid_sample`` (bilinear, zeros outside) read the zero-padded input one group at a time.
Differentiable in input, offset and mask; any floating dtype, any device.
"""

from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .functional import DCNV3_ARGS_DOC, DCNv3Params, IntPair, check_dcnv3_args

__all__ = ['dcnv3_reference', 'sampling_points', 'point_indices']


def point_indices(kernel_h: int, kernel_w: int, remove_center: bool) -> List[Tuple[int, int]]:
    """Kernel positions ``(i_x, i_y)`` of the sampling points, in DCNv3 point order.

    Point ``k = i_x * kernel_h + i_y`` (x varies slowest); ``remove_center`` drops the centre
    position ``(kernel_w // 2, kernel_h // 2)`` (odd kernels) and keeps the order of the rest.

    Args:
        kernel_h (int): Kernel height.
        kernel_w (int): Kernel width.
        remove_center (bool): Drop the centre point.
    """
    return [
        (i_x, i_y)
        for i_x in range(kernel_w)
        for i_y in range(kernel_h)
        if not (remove_center and i_x == kernel_w // 2 and i_y == kernel_h // 2)
    ]


def sampling_points(
    kernel_h: int,
    kernel_w: int,
    dilation_h: int,
    dilation_w: int,
    remove_center: bool,
    dtype: torch.dtype = torch.float32,
    device: torch.device = None,
) -> Tensor:
    """Kernel grid offsets ``(K, 2)`` as (x, y) pixel displacements, in DCNv3 point order.

    The point at kernel position ``(i_x, i_y)`` (:func:`point_indices`) sits at
    ``(-half_w + i_x*dilation_w, -half_h + i_y*dilation_h)`` with
    ``half = (dilation*(kernel-1))//2`` per axis.
    """
    half_w = (dilation_w * (kernel_w - 1)) // 2
    half_h = (dilation_h * (kernel_h - 1)) // 2
    points = [
        (-half_w + i_x * dilation_w, -half_h + i_y * dilation_h)
        for i_x, i_y in point_indices(kernel_h, kernel_w, remove_center)
    ]
    return torch.tensor(points, dtype=dtype, device=device)


def _dcnv3_reference(input: Tensor, offset: Tensor, mask: Tensor, params: DCNv3Params) -> Tensor:
    """:func:`dcnv3_reference` for validated ``params`` (also the DCNv4 reference's core)."""
    kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w = params[:8]
    group, group_channels, offset_scale = params.group, params.group_channels, params.offset_scale
    out_h, out_w = offset.shape[1:3]  # checked against the output size
    batch, height, width, channels = input.shape
    padded_h, padded_w = height + 2 * pad_h, width + 2 * pad_w
    # grid_sample on CPU lacks reduced-precision kernels; sample in float32 there.
    compute_dtype = (
        torch.float32
        if (input.device.type == 'cpu' and input.dtype in (torch.float16, torch.bfloat16))
        else input.dtype
    )
    kernel_grid = sampling_points(kernel_h, kernel_w, dilation_h, dilation_w, params.remove_center)
    points = kernel_grid.to(device=input.device, dtype=compute_dtype)
    num_points = points.shape[0]

    # Locations (N, H_out, W_out, G, K, 2) as (x, y) in padded pixel indices.
    base_x = (dilation_w * (kernel_w - 1)) // 2 + stride_w * torch.arange(
        out_w, dtype=compute_dtype, device=input.device
    )
    base_y = (dilation_h * (kernel_h - 1)) // 2 + stride_h * torch.arange(
        out_h, dtype=compute_dtype, device=input.device
    )
    base = torch.stack(torch.meshgrid(base_x, base_y, indexing='xy'), dim=-1)  # (H_out, W_out, 2)
    offset = offset.to(compute_dtype).view(batch, out_h, out_w, group, num_points, 2)
    locations = base[:, :, None, None, :] + (points + offset) * offset_scale

    # grid_sample(align_corners=False) maps pixel index i to the normalised coordinate
    # (2i + 1) / size - 1 and reads zeros outside the (padded) image.
    size = torch.tensor([padded_w, padded_h], dtype=compute_dtype, device=input.device)
    grid = (2 * locations + 1) / size - 1
    grid = grid.permute(0, 3, 1, 2, 4, 5).reshape(batch * group, out_h, out_w * num_points, 2)

    padded = F.pad(input.to(compute_dtype), (0, 0, pad_w, pad_w, pad_h, pad_h))
    value = padded.view(batch, padded_h, padded_w, group, group_channels)
    value = value.permute(0, 3, 4, 1, 2).reshape(batch * group, group_channels, padded_h, padded_w)
    sampled = F.grid_sample(value, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
    sampled = sampled.view(batch, group, group_channels, out_h, out_w, num_points)

    weights = mask.to(compute_dtype).view(batch, out_h, out_w, group, num_points)
    if params.softmax_mask:
        weights = weights.softmax(dim=-1)
    weights = weights.permute(0, 3, 1, 2, 4).unsqueeze(2)  # (N, G, 1, H_out, W_out, K)
    output = (sampled * weights).sum(dim=-1)  # (N, G, Cg, H_out, W_out)
    output = output.permute(0, 3, 4, 1, 2).reshape(batch, out_h, out_w, channels)
    return output.to(input.dtype)


def dcnv3_reference(
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
    """Reference DCNv3; same arguments and result as :func:`ops_dcnv3.dcnv3`.

    For output pixel p, group g, point k the sampling location, in pixel indices of the
    zero-padded input (pixel centres at integers), is
    ``base(p) + (grid_k + offset[p, g, k]) * offset_scale`` with
    ``base(p) = (dilation*(kernel-1))//2 + p*stride`` per axis, and
    ``y[p, g, :] = sum_k mask[p, g, k] * bilinear(input_padded[:, :, g, :], location)``,
    where with ``softmax_mask`` the mask is first replaced by its softmax over k. Any
    floating dtype and device; no limit on the points of ``softmax_mask``.
    """
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
    )
    return _dcnv3_reference(input, offset, mask, params)


dcnv3_reference.__doc__ = f'{dcnv3_reference.__doc__.rstrip()}\n{DCNV3_ARGS_DOC}'
