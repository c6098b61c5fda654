"""Random, well-formed DCNv3 / DCNv4 problems, shared by the tests and the benchmark."""

from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, Optional, Tuple

import torch
from torch import Tensor

from .functional import IntPair, _pair, dcnv3_output_size
from .modules import DCNv3

__all__ = [
    'DCNv3Config',
    'make_inputs',
    'forward_backward',
    'run_with_grads',
    'make_dcnv4_inputs',
    'max_relative_error',
    'randomise_parameters',
    'randomise_dcn_sampling',
]


@dataclass(frozen=True)
class DCNv3Config:
    """The non-tensor arguments of ``dcnv3``, plus the group width of the inputs to build.

    Args:
        kernel_size (int or (int, int)): Kernel size (h, w). Defaults to 3.
        stride (int or (int, int)): Stride (h, w). Defaults to 1.
        padding (int or (int, int)): Zero padding (h, w). Defaults to 1.
        dilation (int or (int, int)): Dilation (h, w). Defaults to 1.
        group (int): Number of groups. Defaults to 2.
        group_channels (int): Channels per group of the inputs :func:`make_inputs` builds
            (C = group * group_channels; the op derives it from C). Defaults to 16.
        offset_scale (float): Scale of kernel grid and offsets. Defaults to 1.0.
        remove_center (bool): Drop the centre point. Defaults to False.
    """

    kernel_size: IntPair = 3
    stride: IntPair = 1
    padding: IntPair = 1
    dilation: IntPair = 1
    group: int = 2
    group_channels: int = 16
    offset_scale: float = 1.0
    remove_center: bool = False

    @property
    def kwargs(self) -> Dict[str, Any]:
        """Keyword arguments of ``dcnv3`` / ``dcnv3_reference`` following (input, offset, mask)."""
        kwargs = asdict(self)
        del kwargs['group_channels']
        return kwargs

    def pairs(self) -> Tuple[Tuple[int, int], ...]:
        """``(kernel, stride, padding, dilation)``, each as an (h, w) pair."""
        names = ('kernel_size', 'stride', 'padding', 'dilation')
        return tuple(_pair(name, getattr(self, name), 0) for name in names)

    @property
    def schema_args(self) -> tuple:
        """Positional hyper-parameters of ``torch.ops.ops_dcnv3.dcnv3_forward`` / ``_backward``
        following the tensors, without the optional ``softmax_mask``."""
        per_axis = sum(self.pairs(), ())
        return (*per_axis, self.group, self.group_channels, self.offset_scale, self.remove_center)

    @property
    def channels(self) -> int:
        return self.group * self.group_channels

    @property
    def num_points(self) -> int:
        kernel_h, kernel_w = self.pairs()[0]
        return kernel_h * kernel_w - int(self.remove_center)

    def output_size(self, height: int, width: int) -> Tuple[int, int]:
        """``(H_out, W_out)`` for an input of ``height`` x ``width``."""
        kernel, stride, padding, dilation = self.pairs()
        return tuple(
            dcnv3_output_size(size, *axis)
            for size, axis in zip((height, width), zip(kernel, stride, padding, dilation))
        )


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
        config (DCNv3Config): Hyper-parameters and group width of the problem.
        batch (int): Batch size N.
        height (int): Input height H.
        width (int): Input width W.
        dtype (torch.dtype): dtype of the three tensors (drawn in float64, then rounded).
            Defaults to torch.float32.
        device (str): Device of the three tensors. Defaults to ``'cpu'``.
        offset_range (float): Offsets are uniform in ``[-offset_range, offset_range]``, so
            samples land inside, on the border of and outside the image. Defaults to 2.0.
        fractional_offsets (float, optional): If given, offsets become
            ``integer + fractional_offsets + noise(+-0.05)``: every sampling location then
            stays clear of the integer grid lines where bilinear interpolation has kinks (what
            finite-difference gradient checks need, with ``offset_scale`` 1 and a fractional
            part in (0.05, 0.45) or (0.55, 0.95)). Defaults to None.
        seed (int): Seed of a private generator. Defaults to 0.

    Returns:
        tuple: ``(input, offset, mask)``, channels-last and contiguous.
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
    from .dcnv4_functional import pack_offset_mask

    input, offset, mask = make_inputs(config, *size, **kwargs)
    generator = torch.Generator().manual_seed(kwargs.get('seed', 0) + 7)
    weights = torch.rand(mask.shape, generator=generator, dtype=torch.float64) * 2 - 1
    offset_mask = pack_offset_mask(offset, weights.to(mask), config.group, packed_channels)
    offset_mask[..., config.group * config.num_points * 3 :] = padding_value
    return input, offset_mask


def max_relative_error(value: Tensor, reference: Tensor) -> float:
    """``max |value - reference| / max |reference|``, in float64 on the CPU.

    Args:
        value (Tensor): The values to judge.
        reference (Tensor): The values they should have (same shape).
    """
    value, reference = value.detach().double().cpu(), reference.detach().double().cpu()
    return ((value - reference).abs().max() / reference.abs().max()).item()


def randomise_parameters(module: torch.nn.Module, seed: int = 0, scale: float = 0.3):
    """Fills every parameter of ``module`` with seeded ``scale * randn`` values in place (the
    offset and mask projections of a fresh DCNv3 start at zero), and returns ``module``.

    Args:
        module (nn.Module): The module to fill.
        seed (int): Seed of a private generator. Defaults to 0.
        scale (float): Standard deviation of the values. Defaults to 0.3.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            values = torch.randn(param.shape, generator=generator, dtype=param.dtype)
            param.copy_(values * scale)
    return module


def randomise_dcn_sampling(
    model: torch.nn.Module, seed: int = 0, offset_pixels: float = 1.5
) -> torch.nn.Module:
    """Makes every DCNv3 layer of ``model`` sample off the integer grid, in place.

    A fresh DCNv3 predicts zero offsets and equal point weights (its offset and mask
    projections start at zero), so each layer is a box filter over whole pixels and a check
    on it never runs fractional bilinear sampling or its gradients; the centre-feature-scale
    gate starts at zero and InternImage's layer scales (``gamma1``/``gamma2``) at 1e-5, which
    hide the DCNv3 branch further. This draws offsets of about ``offset_pixels`` pixels,
    uneven point weights, live gates and layer scales in [0.5, 1.5]; every other parameter
    keeps its value. The same seed gives the same values (a private generator, CPU draws).

    Args:
        model (nn.Module): A DCNv3 module or a model holding some.
        seed (int): Seed of the private generator. Defaults to 0.
        offset_pixels (float): Typical offset magnitude in pixels. Defaults to 1.5.

    Returns:
        nn.Module: ``model``.
    """
    generator = torch.Generator().manual_seed(seed)

    def uniform(tensor: Tensor, low: float, high: float) -> None:
        values = torch.rand(tensor.shape, generator=generator) * (high - low) + low
        tensor.copy_(values)

    def normal(tensor: Tensor, std: float) -> None:
        tensor.copy_(torch.randn(tensor.shape, generator=generator) * std)

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, DCNv3):
                fan_in = module.offset.weight.shape[1]
                normal(module.offset.weight, offset_pixels / fan_in**0.5)
                uniform(module.offset.bias, -offset_pixels, offset_pixels)
                normal(module.mask.weight, 1.0 / fan_in**0.5)
                uniform(module.mask.bias, -1.0, 1.0)
                if module.center_feature_scale:
                    normal(module.center_feature_scale_proj_weight, 1.0 / fan_in**0.5)
                    uniform(module.center_feature_scale_proj_bias, -1.0, 1.0)
            for name in ('gamma1', 'gamma2'):
                gamma = getattr(module, name, None)
                if isinstance(gamma, torch.nn.Parameter):
                    uniform(gamma, 0.5, 1.5)
    return model
