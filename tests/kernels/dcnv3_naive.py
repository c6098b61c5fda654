"""The test suite's one naive DCNv3, written from the definition in docs/dcnv3.md, and the
small cases the kernel tests use.

The naive version loops in Python over every (image, output pixel, group, point) of tiny
inputs and reads the four bilinear neighbours of the zero-padded input one by one, so it
shares no sampling code with the kernels, with ``ops_dcnv3.dcnv3_reference`` or with
``grid_sample`` (only the output-size formula, ``dcnv3_output_size``, is imported). Its
autograd gradients are the independent check of the kernels' backward.
"""

import math

import torch
import torch.nn.functional as F

from ops_dcnv3 import dcnv3_output_size
from ops_dcnv3.testing import DCNv3Config, make_inputs


def _hw(value):
    """An int or an (h, w) pair as (h, w)."""
    return (value, value) if isinstance(value, int) else tuple(value)


def naive_dcnv3(
    x,
    offset,
    mask,
    *,
    kernel_size=3,
    stride=1,
    padding=1,
    dilation=1,
    group,
    offset_scale=1.0,
    remove_center=False,
    softmax_mask=False,
):
    """Direct transcription of the operator's definition, with the keyword arguments of
    ``ops_dcnv3.dcnv3`` (differentiable; use float64)."""
    (kernel_h, kernel_w), (stride_h, stride_w) = _hw(kernel_size), _hw(stride)
    (pad_h, pad_w), (dilation_h, dilation_w) = _hw(padding), _hw(dilation)
    batch, height, width, channels = x.shape
    group_channels = channels // group
    out_h = dcnv3_output_size(height, kernel_h, stride_h, pad_h, dilation_h)
    out_w = dcnv3_output_size(width, kernel_w, stride_w, pad_w, dilation_w)
    padded = F.pad(x, (0, 0, pad_w, pad_w, pad_h, pad_h))
    padded_h, padded_w = padded.shape[1:3]
    points = [
        (i_x, i_y)
        for i_x in range(kernel_w)
        for i_y in range(kernel_h)
        if not (remove_center and i_x == kernel_w // 2 and i_y == kernel_h // 2)
    ]
    num_points = len(points)
    if softmax_mask:  # torch.softmax over each group's points, not the kernels' code
        mask = mask.unflatten(-1, (group, num_points)).softmax(-1).flatten(3)
    half_h = dilation_h * (kernel_h - 1) // 2
    half_w = dilation_w * (kernel_w - 1) // 2
    zero = x.new_zeros(group_channels)

    def read(n, row, col, g):
        if 0 <= row < padded_h and 0 <= col < padded_w:
            return padded[n, row, col, g * group_channels : (g + 1) * group_channels]
        return zero

    pixels = []
    for n in range(batch):
        for h_out in range(out_h):
            for w_out in range(out_w):
                groups = []
                for g in range(group):
                    acc = zero
                    for k, (i_x, i_y) in enumerate(points):
                        j = g * num_points + k
                        loc_x = (
                            half_w
                            + w_out * stride_w
                            + (-half_w + i_x * dilation_w + offset[n, h_out, w_out, 2 * j])
                            * offset_scale
                        )
                        loc_y = (
                            half_h
                            + h_out * stride_h
                            + (-half_h + i_y * dilation_h + offset[n, h_out, w_out, 2 * j + 1])
                            * offset_scale
                        )
                        x0, y0 = math.floor(loc_x.item()), math.floor(loc_y.item())
                        fx, fy = loc_x - x0, loc_y - y0
                        sample = (
                            (1 - fy) * (1 - fx) * read(n, y0, x0, g)
                            + (1 - fy) * fx * read(n, y0, x0 + 1, g)
                            + fy * (1 - fx) * read(n, y0 + 1, x0, g)
                            + fy * fx * read(n, y0 + 1, x0 + 1, g)
                        )
                        acc = acc + mask[n, h_out, w_out, j] * sample
                    groups.append(acc)
                pixels.append(torch.cat(groups))
    return torch.stack(pixels).view(batch, out_h, out_w, channels)


# name: (config, (batch, height, width))
CASES = {
    'k3s1p1': (DCNv3Config(group=2, group_channels=2), (2, 3, 3)),
    'stride2-dilation2-remove-center': (
        DCNv3Config(
            stride=2, dilation=2, group=1, group_channels=3, offset_scale=0.7, remove_center=True
        ),
        (1, 4, 5),
    ),
    'rectangular-kernel': (
        DCNv3Config(kernel_size=(3, 2), padding=(1, 0), group_channels=2, offset_scale=1.5),
        (2, 3, 4),
    ),
    'wide-group-k5': (
        DCNv3Config(kernel_size=5, padding=2, group=1, group_channels=11, offset_scale=2.0),
        (1, 4, 4),
    ),
    # Group widths the kernels specialise (InternImage T-XL use 16, H/G 32).
    'group-channels-16': (DCNv3Config(group=2, group_channels=16), (1, 3, 3)),
    'group-channels-32-remove-center': (
        DCNv3Config(group=1, group_channels=32, remove_center=True),
        (1, 3, 2),
    ),
    # Wider than one pass of a GPU warp's channel lanes (several steps per thread).
    'group-channels-130': (DCNv3Config(group=1, group_channels=130), (1, 2, 3)),
}


# Kernels of 26 to 64 points, the fused softmax's largest (64 is its limit, and the CUDA
# backward keeps each item's point-weight gradients in an array of that length). Separate
# from CASES: the mask-softmax tests are the ones that need them.
LARGE_KERNEL_CASES = {
    'k7-49-points': (DCNv3Config(kernel_size=7, padding=3, group=2, group_channels=3), (1, 3, 4)),
    'k8-64-points': (
        DCNv3Config(kernel_size=8, padding=3, group=1, group_channels=4, offset_scale=1.5),
        (1, 3, 3),
    ),
}


def case_inputs(case, dtype=torch.float64, device='cpu', seed=0):
    """``(config, [x, offset, mask])`` of a case named in ``CASES`` or ``LARGE_KERNEL_CASES``
    (or given as ``(config, size)``); offsets up to 3 pixels, so some samples leave the
    image."""
    config, size = {**CASES, **LARGE_KERNEL_CASES}[case] if isinstance(case, str) else case
    tensors = make_inputs(config, *size, dtype=dtype, device=device, offset_range=3.0, seed=seed)
    return config, list(tensors)


def mask_logits(mask, seed=11):
    """Random mask logits (scale 3, so the softmax is far from uniform) shaped like ``mask``."""
    gen = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(mask.shape, generator=gen, dtype=torch.float64)
    return logits.to(dtype=mask.dtype, device=mask.device)


def random_like_output(x, offset, seed=1):
    """A seeded random gradient of the output, shaped (N, H_out, W_out, C) like the op's."""
    shape = (x.shape[0], offset.shape[1], offset.shape[2], x.shape[3])
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=torch.float64).to(x.dtype).to(x.device)


def naive_with_grads(x, offset, mask, config, grad_output, softmax_mask=False):
    """Naive output and autograd gradients in float64 on the CPU, for ``config``'s keyword
    arguments. With ``softmax_mask``, ``mask`` holds logits."""
    leaves = [t.detach().cpu().double().requires_grad_() for t in (x, offset, mask)]
    out = naive_dcnv3(*leaves, **config.kwargs, softmax_mask=softmax_mask)
    out.backward(grad_output.detach().cpu().double())
    return out.detach(), [leaf.grad for leaf in leaves]
