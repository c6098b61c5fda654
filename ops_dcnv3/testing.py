"""Random, well-formed DCNv3 problems, shared by the tests and the benchmark."""

from dataclasses import astuple, dataclass
from typing import Callable, Optional, Tuple

import torch
from torch import Tensor

from .functional import dcnv3_output_size

__all__ = ['DCNv3Config', 'make_inputs', 'forward_backward', 'max_relative_error']


@dataclass(frozen=True)
class DCNv3Config:
    """The non-tensor arguments of ``dcnv3``, in its positional order.

    Args:
        kernel_h (int): Defaults to 3.
        kernel_w (int): Defaults to 3.
        stride_h (int): Defaults to 1.
        stride_w (int): Defaults to 1.
        pad_h (int): Defaults to 1.
        pad_w (int): Defaults to 1.
        dilation_h (int): Defaults to 1.
        dilation_w (int): Defaults to 1.
        group (int): Defaults to 2.
        group_channels (int): Defaults to 16.
        offset_scale (float): Defaults to 1.0.
        im2col_step (int): Defaults to 64.
        remove_center (bool): Defaults to False.
    """

    kernel_h: int = 3
    kernel_w: int = 3
    stride_h: int = 1
    stride_w: int = 1
    pad_h: int = 1
    pad_w: int = 1
    dilation_h: int = 1
    dilation_w: int = 1
    group: int = 2
    group_channels: int = 16
    offset_scale: float = 1.0
    im2col_step: int = 64
    remove_center: bool = False

    @property
    def args(self) -> tuple:
        """Positional arguments following (input, offset, mask)."""
        return astuple(self)

    @property
    def channels(self) -> int:
        return self.group * self.group_channels

    @property
    def num_points(self) -> int:
        return self.kernel_h * self.kernel_w - int(self.remove_center)

    def output_size(self, height: int, width: int) -> Tuple[int, int]:
        out_h = dcnv3_output_size(height, self.kernel_h, self.stride_h, self.pad_h, self.dilation_h)
        out_w = dcnv3_output_size(width, self.kernel_w, self.stride_w, self.pad_w, self.dilation_w)
        return out_h, out_w


def make_inputs(
    config: DCNv3Config,
    batch: int,
    height: int,
    width: int,
    dtype: torch.dtype = torch.float32,
    device: str = 'cpu',
    offset_range: float = 2.0,
    fractional_offsets: Optional[float] = None,
    seed: int = 0,
) -> Tuple[Tensor, Tensor, Tensor]:
    """Random (input, offset, mask) for ``config``; mask is softmax-normalised per group.

    Args:
        offset_range (float): Offsets are uniform in ``[-offset_range, offset_range]``, so
            samples land inside, on the border of and outside the image. Defaults to 2.0.
        fractional_offsets (float, optional): If given, offsets become
            ``integer + fractional_offsets + noise(+-0.05)``: every sampling location then
            stays clear of the integer grid lines where bilinear interpolation has kinks (what
            finite-difference gradient checks need, with ``offset_scale`` 1 and a fractional
            part in (0.05, 0.45) or (0.55, 0.95)). Defaults to None.
        seed (int): Seed of a private generator. Defaults to 0.
    """
    generator = torch.Generator().manual_seed(seed)
    out_h, out_w = config.output_size(height, width)
    group, num_points = config.group, config.num_points

    def rand(*shape):
        return torch.rand(*shape, generator=generator, dtype=torch.float64)

    input = rand(batch, height, width, config.channels) * 2 - 1
    offset = (rand(batch, out_h, out_w, group * num_points * 2) * 2 - 1) * offset_range
    if fractional_offsets is not None:
        offset = offset.round() + fractional_offsets + (rand(*offset.shape) - 0.5) * 0.1
    logits = rand(batch, out_h, out_w, group, num_points) * 4
    mask = torch.softmax(logits, dim=-1).flatten(3)
    return tuple(t.to(device=device, dtype=dtype) for t in (input, offset, mask))


def forward_backward(
    op: Callable,
    input: Tensor,
    offset: Tensor,
    mask: Tensor,
    config: DCNv3Config,
    grad_output: Optional[Tensor] = None,
) -> Tuple[Tensor, Tuple[Tensor, ...], Tensor]:
    """Runs ``op`` (``dcnv3`` or ``dcnv3_reference``) forward and backward.

    The tensors are used as they are (layouts included, as new leaves).

    Args:
        grad_output (Tensor, optional): Gradient of the output; ``None`` draws a seeded
            random one. Defaults to None.

    Returns:
        tuple: ``(output, (grad_input, grad_offset, grad_mask), grad_output)``.
    """
    leaves = [t.detach().requires_grad_() for t in (input, offset, mask)]
    out = op(*leaves, *config.args)
    if grad_output is None:
        generator = torch.Generator().manual_seed(1)
        grad_output = torch.randn(out.shape, generator=generator, dtype=torch.float64)
        grad_output = grad_output.to(device=out.device, dtype=out.dtype)
    grads = torch.autograd.grad(out, leaves, grad_output)
    return out, grads, grad_output


def max_relative_error(value: Tensor, reference: Tensor) -> float:
    """``max |value - reference| / max |reference|``, in float64 on the CPU."""
    value, reference = value.detach().double().cpu(), reference.detach().double().cpu()
    return ((value - reference).abs().max() / reference.abs().max()).item()
