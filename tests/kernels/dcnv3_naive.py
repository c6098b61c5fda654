"""A naive DCNv3 written here from DESIGN.md section 2, and the small cases the kernel tests use.

The naive version loops in Python over every (image, output pixel, group, point) of tiny
inputs and reads the four bilinear neighbours of the zero-padded input one by one, so it
shares no code with the kernels (nor with ``ops_dcnv3.dcnv3_reference``). Its autograd
gradients are the independent check of the kernels' backward.
"""

import math

import torch
import torch.nn.functional as F


def output_size(size, pad, dilation, kernel, stride):
    return (size + 2 * pad - (dilation * (kernel - 1) + 1)) // stride + 1


def naive_dcnv3(
    x,
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
    remove_center,
):
    """Direct transcription of the operator's definition (float64, differentiable)."""
    batch, height, width, _ = x.shape
    out_h = output_size(height, pad_h, dilation_h, kernel_h, stride_h)
    out_w = output_size(width, pad_w, dilation_w, kernel_w, stride_w)
    padded = F.pad(x, (0, 0, pad_w, pad_w, pad_h, pad_h))
    padded_h, padded_w = padded.shape[1:3]
    points = [
        (i_x, i_y)
        for i_x in range(kernel_w)
        for i_y in range(kernel_h)
        if not (remove_center and i_x == kernel_w // 2 and i_y == kernel_h // 2)
    ]
    num_points = len(points)
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
    return torch.stack(pixels).view(batch, out_h, out_w, group * group_channels)


# (batch, height, width, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h,
#  dilation_w, group, group_channels, offset_scale, remove_center)
CASES = {
    'k3s1p1': (2, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 2, 2, 1.0, False),
    'stride2-dilation2-remove-center': (1, 4, 5, 3, 3, 2, 2, 1, 1, 2, 2, 1, 3, 0.7, True),
    'rectangular-kernel': (2, 3, 4, 3, 2, 1, 1, 1, 0, 1, 1, 2, 2, 1.5, False),
    'wide-group-k5': (1, 4, 4, 5, 5, 1, 1, 2, 2, 1, 1, 1, 11, 2.0, False),
    # Group widths the kernels specialise (InternImage T-XL use 16, H/G 32).
    'group-channels-16': (1, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 2, 16, 1.0, False),
    'group-channels-32-remove-center': (1, 3, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 32, 1.0, True),
    # Wider than one pass of a GPU warp's channel lanes (several steps per thread).
    'group-channels-130': (1, 2, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 130, 1.0, False),
}


def make_inputs(case, dtype=torch.float64, device='cpu', seed=0):
    (
        batch,
        height,
        width,
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
        remove_center,
    ) = case
    gen = torch.Generator().manual_seed(seed)
    out_h = output_size(height, pad_h, dilation_h, kernel_h, stride_h)
    out_w = output_size(width, pad_w, dilation_w, kernel_w, stride_w)
    num_points = kernel_h * kernel_w - int(remove_center)
    x = torch.randn(
        batch, height, width, group * group_channels, generator=gen, dtype=torch.float64
    )
    # Offsets of a few pixels, so that some samples leave the image.
    offset = 1.5 * torch.randn(
        batch, out_h, out_w, group * num_points * 2, generator=gen, dtype=torch.float64
    )
    mask = (
        torch.rand(batch, out_h, out_w, group, num_points, generator=gen, dtype=torch.float64)
        .softmax(-1)
        .flatten(3)
    )
    params = (
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
        2,
        remove_center,
    )
    return [t.to(dtype=dtype, device=device) for t in (x, offset, mask)], params


def mask_logits(mask, seed=11):
    """Random mask logits (scale 3, so the softmax is far from uniform) shaped like ``mask``."""
    gen = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(mask.shape, generator=gen, dtype=torch.float64)
    return logits.to(dtype=mask.dtype, device=mask.device)


def naive_with_grads(x, offset, mask, params, grad_output, softmax_mask=False):
    """Naive output and autograd gradients. With ``softmax_mask``, ``mask`` holds logits and
    the naive op sees their softmax over each group's points (torch.softmax, not our code)."""
    leaves = [t.detach().cpu().double().requires_grad_() for t in (x, offset, mask)]
    kernel_args = params[:11] + params[12:]  # drop im2col_step
    weights = leaves[2]
    if softmax_mask:
        group = params[8]
        weights = weights.unflatten(-1, (group, -1)).softmax(-1).flatten(3)
    out = naive_dcnv3(leaves[0], leaves[1], weights, *kernel_args)
    out.backward(grad_output.detach().cpu().double())
    return out.detach(), [leaf.grad for leaf in leaves]
