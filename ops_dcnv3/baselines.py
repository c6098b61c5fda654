"""Pure-PyTorch formulations of DCNv3 that the operator benchmark times the kernels against.

``dcnv3_reference`` (ops_dcnv3.reference) is the definition the tests trust; it favours
being obviously right over speed. A speed-up should be measured against the fastest plain
PyTorch one can reasonably write, so ``tools/benchmark_dcnv3.py`` uses these two:

- :func:`dcnv3_grid_sample_official`: the formulation of the official repository's
  ``dcnv3_core_pytorch`` (InternImage ``ops_dcnv3/functions/dcnv3_func.py``), written
  again here: zero-pad the input, build the sampling grid normalised to [-1, 1] over the
  padded size, ``F.grid_sample`` with the groups as batch and a (H_out*W_out, K) grid, then
  multiply by the mask and sum over the points.
- :func:`dcnv3_pytorch_fast`: the same sampling without the padding copy (the grid is
  normalised over the unpadded input; ``grid_sample``'s zeros outside are the padding), with
  the points outermost in the grid, so that the weighted sum over the points multiplies and
  adds whole rows of pixels. (A batched matrix-vector product for that sum, and an einsum,
  were slower: both copy the samples into another layout first.)

Both take the arguments of :func:`ops_dcnv3.dcnv3` (checked the same way) and return the
same result; tests/ops/test_baselines.py checks them against the reference.
"""

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .functional import DCNv3Params, check_dcnv3_args
from .reference import sampling_points

__all__ = ['dcnv3_grid_sample_official', 'dcnv3_pytorch_fast']


# The defaults of ops_dcnv3.dcnv3's keyword arguments (all but the required ``group``).
_DEFAULTS = dict(
    kernel_size=3,
    stride=1,
    padding=1,
    dilation=1,
    offset_scale=1.0,
    remove_center=False,
    softmax_mask=False,
)


def _check_args(input: Tensor, offset: Tensor, mask: Tensor, kwargs: dict) -> DCNv3Params:
    """The checks of ``dcnv3`` on its arguments (unknown keywords raise ``TypeError``)."""
    unknown = sorted(set(kwargs) - set(_DEFAULTS) - {'group'})
    if unknown:
        raise TypeError(f'unexpected keyword arguments {unknown}')
    if 'group' not in kwargs:
        raise TypeError("missing the keyword argument 'group'")
    return check_dcnv3_args(input, offset, mask, **{**_DEFAULTS, **kwargs})


def _kernel_grid(params: DCNv3Params, dtype: torch.dtype, device) -> Tensor:
    """(K, 2) kernel displacements (x, y) in pixels, DCNv3 point order."""
    kernel_h, kernel_w, _, _, _, _, dilation_h, dilation_w = params[:8]
    return sampling_points(
        kernel_h, kernel_w, dilation_h, dilation_w, params.remove_center, dtype, device
    )


def _centres(params: DCNv3Params, out_h: int, out_w: int, dtype, device) -> Tensor:
    """(H_out, W_out, 1, 2) kernel centres (x, y) in pixels of the padded input."""
    kernel_h, kernel_w, stride_h, stride_w, _, _, dilation_h, dilation_w = params[:8]
    x = (dilation_w * (kernel_w - 1)) // 2 + stride_w * torch.arange(
        out_w, dtype=dtype, device=device
    )
    y = (dilation_h * (kernel_h - 1)) // 2 + stride_h * torch.arange(
        out_h, dtype=dtype, device=device
    )
    return torch.stack(torch.meshgrid(x, y, indexing='xy'), dim=-1)[:, :, None, :]


def _weights(mask: Tensor, params: DCNv3Params, num_points: int) -> Tensor:
    """(N, H_out, W_out, G, K) point weights (the softmax of the logits with softmax_mask)."""
    weights = mask.unflatten(-1, (params.group, num_points))
    return weights.softmax(-1) if params.softmax_mask else weights


def dcnv3_grid_sample_official(
    input: Tensor, offset: Tensor, mask: Tensor, **kwargs: Any
) -> Tensor:
    """DCNv3 in the official pure-PyTorch formulation (see the module docstring).

    Args:
        input, offset, mask (Tensor): As for :func:`ops_dcnv3.dcnv3`.
        **kwargs: The keyword arguments of :func:`ops_dcnv3.dcnv3` (``group`` required).
    """
    params = _check_args(input, offset, mask, kwargs)
    group = params.group
    pad_h, pad_w = params.pad_h, params.pad_w
    padded = F.pad(input, [0, 0, pad_w, pad_w, pad_h, pad_h])
    batch, height, width, channels = padded.shape
    _, out_h, out_w, _ = offset.shape
    points = _kernel_grid(params, input.dtype, input.device)
    num_points = points.shape[0]
    size = torch.tensor([width, height], dtype=input.dtype, device=input.device)
    # Pixel centres at (i + 0.5) / size in [0, 1]: align_corners=False.
    centres = (_centres(params, out_h, out_w, input.dtype, input.device) + 0.5) / size
    locations = (
        centres[:, :, None]
        + (points + offset.unflatten(-1, (group, num_points, 2))) * params.offset_scale / size
    )
    grid = (2 * locations - 1).view(batch, out_h * out_w, group, num_points, 2)
    grid = grid.transpose(1, 2).flatten(0, 1)  # (N*G, H_out*W_out, K, 2)
    value = padded.view(batch, height * width, channels).transpose(1, 2)
    value = value.reshape(batch * group, params.group_channels, height, width)
    sampled = F.grid_sample(value, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
    weights = _weights(mask, params, num_points).view(batch, out_h * out_w, group, num_points)
    weights = weights.transpose(1, 2).reshape(batch * group, 1, out_h * out_w, num_points)
    output = (sampled * weights).sum(-1).view(batch, channels, out_h * out_w)
    return output.transpose(1, 2).reshape(batch, out_h, out_w, channels).contiguous()


def dcnv3_pytorch_fast(input: Tensor, offset: Tensor, mask: Tensor, **kwargs: Any) -> Tensor:
    """DCNv3 in plain PyTorch without the official formulation's padding copy (module
    docstring).

    Args:
        input, offset, mask (Tensor): As for :func:`ops_dcnv3.dcnv3`.
        **kwargs: The keyword arguments of :func:`ops_dcnv3.dcnv3` (``group`` required).
    """
    params = _check_args(input, offset, mask, kwargs)
    group = params.group
    batch, height, width, channels = input.shape
    _, out_h, out_w, _ = offset.shape
    cg = params.group_channels
    points = _kernel_grid(params, input.dtype, input.device)
    num_points = points.shape[0]
    # Locations in pixels of the unpadded input, then normalised for align_corners=False:
    # pixel centre i sits at (2i + 1) / size - 1.
    pad = torch.tensor([params.pad_w, params.pad_h], dtype=input.dtype, device=input.device)
    scale = 2 / torch.tensor([width, height], dtype=input.dtype, device=input.device)
    centres = (_centres(params, out_h, out_w, input.dtype, input.device) - pad + 0.5) * scale - 1
    grid = centres[:, :, None] + (points + offset.unflatten(-1, (group, num_points, 2))) * (
        params.offset_scale * scale
    )  # (N, H_out, W_out, G, K, 2)
    # Points outermost: grid (N*G, K, H_out*W_out, 2), samples (N*G, Cg, K, H_out*W_out), so
    # the weighted sum over the points runs along whole rows of pixels.
    grid = grid.permute(0, 3, 4, 1, 2, 5).reshape(batch * group, num_points, out_h * out_w, 2)
    value = input.view(batch, height * width, channels).transpose(1, 2)
    value = value.reshape(batch * group, cg, height, width)
    sampled = F.grid_sample(value, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
    weights = _weights(mask, params, num_points).permute(0, 3, 4, 1, 2)
    weights = weights.reshape(batch * group, 1, num_points, out_h * out_w)
    output = (sampled * weights).sum(2).view(batch, channels, out_h * out_w)
    return output.transpose(1, 2).reshape(batch, out_h, out_w, channels)
