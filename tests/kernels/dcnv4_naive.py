"""The test suite's naive DCNv4: the official DCNv4 operator's math re-derived independently.

Written from the official CUDA forward kernel's formulation (OpenGVLab/DCNv4,
``DCNv4_op/src/cuda/dcnv4_im2col_cuda.cuh``, read for facts only), not from our code:

- ``offset_mask`` row of output pixel q is read at ``q * P`` (P its last dimension, padded by
  the official module to a multiple of 8); group g's parameters start at ``g * K * 3``: the
  K pairs (dx, dy) at ``2*idx``, ``2*idx + 1``, then the K weights at ``2*K + idx``;
- points are visited ``for i in range(kernel_w): for j in range(kernel_h)`` (x slowest),
  skipping the centre with remove_center, ``idx`` counting the visited points;
- the location, in pixels of the *unpadded* input, is
  ``w = p0_w - half_w * scale + (i * dilation_w + dx) * scale`` with
  ``p0_w = half_w - pad_w + w_out * stride_w`` and ``half_w = (dilation_w*(kernel_w-1)) >> 1``
  (the same along h with dy); the weight is used as it is (the module passes softmax=False);
- a point is sampled when ``-1 < h < H and -1 < w < W``, bilinearly from the four
  neighbours, each read only when inside the image.

So it shares nothing with ``ops_dcnv3`` (not the packing helpers, not the reference's
grid_sample and padded-input convention, not ``tests/kernels/dcnv3_naive.py``'s padded
reads); only ``dcnv3_output_size`` (the output-size formula) is imported. Its autograd
gradients check the kernels' backward. Python loops: tiny inputs, float64.
"""

import math

import torch

from ops_dcnv3 import dcnv3_output_size
from tests.kernels.dcnv3_naive import _hw


def naive_dcnv4(
    x,
    offset_mask,
    *,
    kernel_size=3,
    stride=1,
    padding=1,
    dilation=1,
    group,
    offset_scale=1.0,
    remove_center=False,
):
    """Direct transcription of the official kernel's loops, with the keyword arguments of
    ``ops_dcnv3.dcnv4`` (differentiable; use float64)."""
    (kernel_h, kernel_w), (stride_h, stride_w) = _hw(kernel_size), _hw(stride)
    (pad_h, pad_w), (dilation_h, dilation_w) = _hw(padding), _hw(dilation)
    batch, height, width, channels = x.shape
    depth = channels // group
    num_points = kernel_h * kernel_w - int(remove_center)
    out_h = dcnv3_output_size(height, kernel_h, stride_h, pad_h, dilation_h)
    out_w = dcnv3_output_size(width, kernel_w, stride_w, pad_w, dilation_w)
    rows = offset_mask.reshape(batch * out_h * out_w, offset_mask.shape[-1])
    half_h = (dilation_h * (kernel_h - 1)) >> 1
    half_w = (dilation_w * (kernel_w - 1)) >> 1

    def corner(n, h, w, g):
        if 0 <= h < height and 0 <= w < width:
            return x[n, h, w, g * depth : (g + 1) * depth]
        return x.new_zeros(depth)

    outputs = []
    for q in range(batch * out_h * out_w):
        n, h_out, w_out = q // (out_h * out_w), (q // out_w) % out_h, q % out_w
        p0_w_ = half_w - pad_w + w_out * stride_w - half_w * offset_scale
        p0_h_ = half_h - pad_h + h_out * stride_h - half_h * offset_scale
        for g in range(group):
            params = rows[q, g * num_points * 3 : (g + 1) * num_points * 3]
            acc = x.new_zeros(depth)
            idx = 0
            for i in range(kernel_w):
                for j in range(kernel_h):
                    if remove_center and i == kernel_w // 2 and j == kernel_h // 2:
                        continue
                    w_im = p0_w_ + (i * dilation_w + params[2 * idx]) * offset_scale
                    h_im = p0_h_ + (j * dilation_h + params[2 * idx + 1]) * offset_scale
                    attn = params[2 * num_points + idx]
                    idx += 1
                    if not (-1 < h_im.item() < height and -1 < w_im.item() < width):
                        continue
                    h_low, w_low = math.floor(h_im.item()), math.floor(w_im.item())
                    lh, lw = h_im - h_low, w_im - w_low
                    hh, hw = 1 - lh, 1 - lw
                    sample = (
                        hh * hw * corner(n, h_low, w_low, g)
                        + hh * lw * corner(n, h_low, w_low + 1, g)
                        + lh * hw * corner(n, h_low + 1, w_low, g)
                        + lh * lw * corner(n, h_low + 1, w_low + 1, g)
                    )
                    acc = acc + attn * sample
            outputs.append(acc)
    return torch.cat(outputs).view(batch, out_h, out_w, channels)


def naive_dcnv4_with_grads(x, offset_mask, config, grad_output):
    """Naive output and autograd gradients (input, offset_mask) in float64 on the CPU."""
    leaves = [t.detach().cpu().double().requires_grad_() for t in (x, offset_mask)]
    out = naive_dcnv4(*leaves, **config.kwargs)
    out.backward(grad_output.detach().cpu().double())
    return out.detach(), [leaf.grad for leaf in leaves]
