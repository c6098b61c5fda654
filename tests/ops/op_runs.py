"""Running the DCNv3 / DCNv4 ops forward and backward on random problems (test helpers)."""

from typing import Callable, Optional, Tuple

import torch
from torch import Tensor

from ops_dcnv3 import pack_offset_mask
from ops_dcnv3.testing import DCNv3Config, make_inputs

__all__ = ['forward_backward', 'run_with_grads', 'make_dcnv4_inputs']


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
        op (callable): ``dcnv3``, ``dcnv3_reference`` or a partial of them (e.g. with
            ``softmax_mask=True``); called with ``config.kwargs``.
        input (Tensor): (N, H, W, C).
        offset (Tensor): (N, H_out, W_out, group * K * 2).
        mask (Tensor): (N, H_out, W_out, group * K).
        config (DCNv3Config): The op's hyper-parameters.
        grad_output (Tensor, optional): Gradient of the output; ``None`` draws a seeded
            random one. Defaults to None.

    Returns:
        tuple: ``(output, (grad_input, grad_offset, grad_mask), grad_output)``.
    """
    return run_with_grads(op, (input, offset, mask), config, grad_output)


def run_with_grads(
    op: Callable,
    tensors: Tuple[Tensor, ...],
    config: DCNv3Config,
    grad_output: Optional[Tensor] = None,
) -> Tuple[Tensor, Tuple[Tensor, ...], Tensor]:
    """:func:`forward_backward` for any op taking ``tensors`` positionally and
    ``config.kwargs`` (``dcnv4`` with ``(input, offset_mask)``): output, the tensors'
    gradients and the gradient of the output used."""
    leaves = [t.detach().requires_grad_() for t in tensors]
    out = op(*leaves, **config.kwargs)
    if grad_output is None:
        generator = torch.Generator().manual_seed(1)
        grad_output = torch.randn(out.shape, generator=generator, dtype=torch.float64)
        grad_output = grad_output.to(device=out.device, dtype=out.dtype)
    grads = torch.autograd.grad(out, leaves, grad_output)
    return out, grads, grad_output


def make_dcnv4_inputs(
    config: DCNv3Config,
    *size: int,
    packed_channels: Optional[int] = None,
    padding_value: float = 0.0,
    **kwargs,
) -> Tuple[Tensor, Tensor]:
    """Random (input, offset_mask) for ``config`` in the official DCNv4 packing.

    Offsets as :func:`make_inputs` draws them (``size`` = batch, height, width and the
    ``kwargs``, dtype and device among them, are passed on to it); point weights uniform in
    [-1, 1] (DCNv4 applies no softmax, so they are not normalised).

    Args:
        config (DCNv3Config): Hyper-parameters and group width of the problem.
        packed_channels (int, optional): Last dimension of ``offset_mask`` (>= G*K*3);
            ``None``: the official module's, rounded up to a multiple of 8. Defaults to None.
        padding_value (float): Value of the padding entries (the op must ignore them).
            Defaults to 0.0.
    """
    input, offset, mask = make_inputs(config, *size, **kwargs)
    generator = torch.Generator().manual_seed(kwargs.get('seed', 0) + 7)
    weights = torch.rand(mask.shape, generator=generator, dtype=torch.float64) * 2 - 1
    offset_mask = pack_offset_mask(offset, weights.to(mask), config.group, packed_channels)
    offset_mask[..., config.group * config.num_points * 3 :] = padding_value
    return input, offset_mask
