"""Random, well-formed DCNv3 problems and non-trivial module weights, for the benchmarks
(tools/benchmark_dcnv3.py, tools/deploy/benchmark_onnx.py) and the tests.

Helpers only the tests use live in ``tests/ops/op_runs.py``.
"""

from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Tuple

import torch
from torch import Tensor

from .functional import IntPair, _pair, dcnv3_output_size

__all__ = [
    'DCNv3Config',
    'make_inputs',
    'randomise_parameters',
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


def randomise_parameters(
    model: torch.nn.Module, seed: int = 0, offset_pixels: float = 1.5
) -> torch.nn.Module:
    """Non-trivial, seeded values where a fresh model has trivial ones; returns ``model``
    (modified in place).

    A freshly initialised DCNv3 / DCNv4 samples its grid with equal weights (zero offset and
    weight projections), its centre-feature-scale gate is zero and InternImage's layer scales
    start at 1e-5: comparisons (compiled op vs reference, PyTorch vs an exported file) would
    then miss mapping bugs. Drawn here:

    - every parameter of every DCNv3 / DCNv4 module: matrices and conv kernels from
      ``N(0, 1/fan_in)``, vectors (biases, norm weights) from ``U(-1, 1)``; the offset
      projection (``offset``; DCNv4's packed ``offset_mask``) scaled so that offsets reach
      about ``offset_pixels`` (DCNv4's point weights, not softmaxed, about ``1 / K``);
    - layer scales (``gamma1`` / ``gamma2`` parameters anywhere in ``model``): ``U(0.5, 1.5)``.

    Args:
        model (nn.Module): A DCNv3 / DCNv4 module, or a model containing them.
        seed (int): Seed of a private generator. Defaults to 0.
        offset_pixels (float): Typical offset magnitude, in pixels. Defaults to 1.5.
    """
    from .modules import DCNv3, DCNv4

    generator = torch.Generator().manual_seed(seed)

    def draw(param: torch.Tensor, scale: float = 1.0) -> None:
        if param.dim() >= 2:
            fan_in = param[0].numel()
            values = torch.randn(param.shape, generator=generator) * (scale / fan_in**0.5)
        else:
            values = (torch.rand(param.shape, generator=generator) * 2 - 1) * scale
        param.copy_(values)

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (DCNv3, DCNv4)):
                offsets = module.offset if isinstance(module, DCNv3) else module.offset_mask
                offset_params = {id(p) for p in offsets.parameters()}
                for param in module.parameters():
                    draw(param, offset_pixels if id(param) in offset_params else 1.0)
                if isinstance(module, DCNv4):
                    # Packed rows: per group 2K offsets, then K point weights. DCNv4 does not
                    # normalise the weights: keep their sum near 1 like DCNv3's softmax.
                    points = module.num_points
                    rows = torch.arange(offsets.weight.shape[0]) % (3 * points) >= 2 * points
                    for param in offsets.parameters():
                        param[rows] /= offset_pixels * points
            for name in ('gamma1', 'gamma2'):
                gamma = getattr(module, name, None)
                if isinstance(gamma, torch.nn.Parameter):
                    gamma.copy_(torch.rand(gamma.shape, generator=generator) + 0.5)
    return model
