"""The DCNv3 and DCNv4 modules: the InternImage / FlashInternImage token mixers around the
core operators."""

import warnings
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .dcnv4_functional import dcnv4, dcnv4_offset_mask_channels, dcnv4_reference
from .functional import MAX_SOFTMAX_POINTS, dcnv3
from .layers import build_act_layer, build_layout_norm
from .reference import dcnv3_reference

__all__ = ['DCNv3', 'DCNv4']


class _DeformableMixer(nn.Module):
    """What the DCNv3 and DCNv4 modules share: the checks and attributes of the hyper-
    parameters, the centre-feature-scale gate, the input check and the op's keywords.

    Subclasses build their layers, then call :meth:`_add_center_feature_scale` (so the
    parameter order stays that of the official modules) and ``reset_parameters``.
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int,
        stride: int,
        pad: int,
        dilation: int,
        group: int,
        offset_scale: float,
        dw_kernel_size: Optional[int],
        center_feature_scale: bool,
        remove_center: bool,
        use_reference: bool,
    ) -> None:
        super().__init__()
        if channels % group != 0:
            raise ValueError(
                f'channels must be divisible by group, got channels={channels}, group={group}'
            )
        if 2 * pad != dilation * (kernel_size - 1):
            # Offsets and weights come from a same-size branch, so the core op must keep the
            # spatial size too (up to the stride).
            raise ValueError(
                f'pad must be dilation * (kernel_size - 1) / 2 = '
                f'{dilation * (kernel_size - 1) / 2:g} so that the output size '
                f'matches the offset branch, got pad={pad}'
            )
        if dw_kernel_size is not None and dw_kernel_size % 2 == 0:
            raise ValueError(
                f'dw_kernel_size must be odd (same-size depthwise conv), got {dw_kernel_size}'
            )
        if remove_center and kernel_size % 2 == 0:
            raise ValueError(f'remove_center requires an odd kernel_size, got {kernel_size}')
        if center_feature_scale and stride != 1:
            raise ValueError(
                'center_feature_scale blends the output with the input projection, '
                f'so it needs stride=1, got stride={stride}'
            )
        self.channels = channels
        self.kernel_size = kernel_size
        self.dw_kernel_size = dw_kernel_size
        self.stride = stride
        self.pad = pad
        self.dilation = dilation
        self.group = group
        self.group_channels = channels // group
        self.offset_scale = offset_scale
        self.center_feature_scale = center_feature_scale
        self.remove_center = bool(remove_center)
        self.use_reference = use_reference
        self.num_points = kernel_size * kernel_size - int(self.remove_center)

    def _add_center_feature_scale(self) -> None:
        if self.center_feature_scale:
            self.center_feature_scale_proj_weight = nn.Parameter(
                torch.zeros(self.group, self.channels)
            )
            self.center_feature_scale_proj_bias = nn.Parameter(torch.zeros(self.group))

    def _reset_center_feature_scale(self) -> None:
        if self.center_feature_scale:
            nn.init.zeros_(self.center_feature_scale_proj_weight)
            nn.init.zeros_(self.center_feature_scale_proj_bias)

    def _center_feature_blend(
        self, out: torch.Tensor, value: torch.Tensor, source: torch.Tensor
    ) -> torch.Tensor:
        """``out * (1 - s) + value * s`` with the per-group gate ``s = sigmoid(source @ W.T
        + b)``, repeated over each group's channels (the centre feature scale)."""
        weight, bias = self.center_feature_scale_proj_weight, self.center_feature_scale_proj_bias
        scale = torch.sigmoid(F.linear(source, weight, bias))
        scale = scale.repeat_interleave(self.group_channels, dim=-1)  # (N, H, W, C)
        return out * (1 - scale) + value * scale

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[-1] != self.channels:
            raise ValueError(
                f'x must be channels-last (N, H, W, {self.channels}), got shape {tuple(x.shape)}'
            )

    def _op_kwargs(self) -> dict:
        """The core op's keyword arguments."""
        return dict(
            kernel_size=self.kernel_size,
            stride=self.stride,
            padding=self.pad,
            dilation=self.dilation,
            group=self.group,
            offset_scale=self.offset_scale,
            remove_center=self.remove_center,
        )

    def extra_repr(self) -> str:
        return (
            f'channels={self.channels}, kernel_size={self.kernel_size}, stride={self.stride}, '
            f'pad={self.pad}, dilation={self.dilation}, group={self.group}, '
            f'offset_scale={self.offset_scale}, dw_kernel_size={self.dw_kernel_size}, '
            f'remove_center={self.remove_center}, '
            f'center_feature_scale={self.center_feature_scale}'
        )


class DCNv3(_DeformableMixer):
    """Deformable convolution v3 on channels-last features (N, H, W, C).

    Offsets and per-group softmax-normalised point weights (mask) are predicted from a
    depthwise-conv branch of the input; the core operator samples a linear projection of
    the input at those offsets; an output projection follows. Parameter names match the
    released InternImage checkpoints (``dw_conv.0``, ``dw_conv.1.1``, ``offset``, ``mask``,
    ``input_proj``, ``output_proj``, ``center_feature_scale_proj_{weight,bias}``).

    Args:
        channels (int): Input and output channels C. Defaults to 64.
        kernel_size (int): Sampling kernel size (square). Defaults to 3.
        dw_kernel_size (int, optional): Depthwise conv kernel size (odd); ``None`` uses
            ``kernel_size``. Defaults to None.
        stride (int): Stride of the core op and of the depthwise conv. Defaults to 1.
        pad (int): Zero padding of the core op. Defaults to 1.
        dilation (int): Dilation of the kernel grid. Defaults to 1.
        group (int): Number of groups G; ``channels`` must be divisible by it. Defaults to 4.
        offset_scale (float): Scale applied to kernel grid and offsets. Defaults to 1.0.
        act_layer (str): Activation of the depthwise branch. Defaults to ``'GELU'``.
        norm_layer (str): Norm of the depthwise branch. Defaults to ``'LN'``.
        center_feature_scale (bool): Blend the output with the projected input through a
            learned per-group sigmoid gate (InternImage-H/G). Defaults to False.
        remove_center (bool): Drop the kernel's centre point (odd kernel_size). Defaults to False.
        use_reference (bool): Run the pure-PyTorch :func:`dcnv3_reference` instead of the
            compiled op. Defaults to False.
    """

    def __init__(
        self,
        channels: int = 64,
        kernel_size: int = 3,
        dw_kernel_size: Optional[int] = None,
        stride: int = 1,
        pad: int = 1,
        dilation: int = 1,
        group: int = 4,
        offset_scale: float = 1.0,
        act_layer: str = 'GELU',
        norm_layer: str = 'LN',
        center_feature_scale: bool = False,
        remove_center: bool = False,
        use_reference: bool = False,
    ) -> None:
        dw_kernel_size = kernel_size if dw_kernel_size is None else dw_kernel_size
        super().__init__(
            channels, kernel_size, stride, pad, dilation, group, offset_scale, dw_kernel_size,
            center_feature_scale, remove_center, use_reference,
        )  # fmt: skip
        group_channels = self.group_channels
        if group_channels & (group_channels - 1) != 0:
            warnings.warn(
                f'DCNv3 runs fastest when channels // group is a power of two; got '
                f'{group_channels} (channels={channels}, group={group})'
            )

        self.dw_conv = nn.Sequential(
            nn.Conv2d(
                channels,
                channels,
                dw_kernel_size,
                stride=stride,
                padding=(dw_kernel_size - 1) // 2,
                groups=channels,
            ),
            build_layout_norm(channels, norm_layer, 'channels_first', 'channels_last'),
            build_act_layer(act_layer),
        )
        self.offset = nn.Linear(channels, group * self.num_points * 2)
        self.mask = nn.Linear(channels, group * self.num_points)
        self.input_proj = nn.Linear(channels, channels)
        self.output_proj = nn.Linear(channels, channels)
        self._add_center_feature_scale()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero offsets and uniform point weights at start; xavier projections."""
        for layer in (self.offset, self.mask):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        for layer in (self.input_proj, self.output_proj):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        self._reset_center_feature_scale()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, H, W, C) -> (N, H_out, W_out, C)."""
        self._check_input(x)
        value = self.input_proj(x)
        query = self.dw_conv(x.permute(0, 3, 1, 2))  # channels-last, at the output resolution
        offset = self.offset(query)
        mask = self.mask(query)
        # The compiled op softmaxes the point logits itself (one pass less each way); the
        # reference path keeps the explicit softmax, so comparing the two checks the fusion.
        fuse_softmax = (
            not self.use_reference
            and MAX_SOFTMAX_POINTS is not None
            and self.num_points <= MAX_SOFTMAX_POINTS
        )
        if not fuse_softmax:
            mask = F.softmax(mask.view(*mask.shape[:3], self.group, self.num_points), dim=-1)
            mask = mask.flatten(3)

        op = dcnv3_reference if self.use_reference else dcnv3
        out = op(
            value,
            offset.to(value.dtype),
            mask.to(value.dtype),
            **self._op_kwargs(),
            softmax_mask=fuse_softmax,
        )
        if self.center_feature_scale:
            out = self._center_feature_blend(out, value, query)
        return self.output_proj(out)


class DCNv4(_DeformableMixer):
    """Deformable convolution v4 on channels-last features (N, H, W, C): FlashInternImage's
    token mixer.

    One linear layer (``offset_mask``, after an optional depthwise conv ``offset_mask_dw``)
    predicts the packed offsets and point weights of every group, padded to a multiple of 8
    as the official module does; the weights are used as predicted (no softmax). The core
    op (:func:`ops_dcnv3.dcnv4`) samples ``value_proj(x)``; ``output_proj`` follows.
    Parameter names match the official DCNv4 module (``value_proj``, ``offset_mask``,
    ``offset_mask_dw``, ``output_proj``, ``center_feature_scale_proj_{weight,bias}``), so
    FlashInternImage checkpoints load unchanged. Unlike the official module, any channels
    per group work, on CPU and CUDA.

    Args:
        channels (int): Input and output channels C. Defaults to 64.
        kernel_size (int): Sampling kernel size (square). Defaults to 3.
        stride (int): Must be 1 (the offsets are predicted at the input resolution).
            Defaults to 1.
        pad (int): Zero padding of the core op; ``dilation * (kernel_size - 1) / 2``.
            Defaults to 1.
        dilation (int): Dilation of the kernel grid. Defaults to 1.
        group (int): Number of groups G; ``channels`` must be divisible by it. Defaults to 4.
        offset_scale (float): Scale applied to kernel grid and offsets. Defaults to 1.0.
        dw_kernel_size (int, optional): Kernel of a depthwise conv (``offset_mask_dw``, no
            norm or activation) in front of ``offset_mask``; None: none. Defaults to None.
        center_feature_scale (bool): Blend the op's output with ``value_proj(x)`` through a
            per-group sigmoid gate computed from the op's output. Defaults to False.
        remove_center (bool): Drop the kernel's centre point (odd kernel_size). Defaults to
            False.
        output_bias (bool): Bias of ``output_proj``. Defaults to True.
        without_pointwise (bool): No ``value_proj`` / ``output_proj`` (the op samples ``x``
            itself). Defaults to False.
        use_reference (bool): Sample with the pure-PyTorch :func:`dcnv4_reference` (slow, no
            extension needed). Defaults to False.
    """

    def __init__(
        self,
        channels: int = 64,
        kernel_size: int = 3,
        stride: int = 1,
        pad: int = 1,
        dilation: int = 1,
        group: int = 4,
        offset_scale: float = 1.0,
        dw_kernel_size: Optional[int] = None,
        center_feature_scale: bool = False,
        remove_center: bool = False,
        output_bias: bool = True,
        without_pointwise: bool = False,
        use_reference: bool = False,
    ) -> None:
        if stride != 1:
            raise ValueError(
                f'DCNv4 predicts its offsets at the input resolution, so stride must be 1, '
                f'got stride={stride}'
            )
        super().__init__(
            channels, kernel_size, stride, pad, dilation, group, offset_scale, dw_kernel_size,
            center_feature_scale, remove_center, use_reference,
        )  # fmt: skip
        self.without_pointwise = without_pointwise
        if dw_kernel_size is not None:
            self.offset_mask_dw = nn.Conv2d(
                channels, channels, dw_kernel_size, padding=(dw_kernel_size - 1) // 2,
                groups=channels,
            )  # fmt: skip
        self.offset_mask = nn.Linear(channels, dcnv4_offset_mask_channels(group, self.num_points))
        if not without_pointwise:
            self.value_proj = nn.Linear(channels, channels)
            self.output_proj = nn.Linear(channels, channels, bias=output_bias)
        self._add_center_feature_scale()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero offsets and point weights at start; xavier projections with zero biases."""
        nn.init.zeros_(self.offset_mask.weight)
        nn.init.zeros_(self.offset_mask.bias)
        if not self.without_pointwise:
            for layer in (self.value_proj, self.output_proj):
                nn.init.xavier_uniform_(layer.weight)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
        self._reset_center_feature_scale()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, H, W, C) -> (N, H, W, C)."""
        self._check_input(x)
        value = x if self.without_pointwise else self.value_proj(x)
        query = x
        if self.dw_kernel_size is not None:
            query = self.offset_mask_dw(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        offset_mask = self.offset_mask(query)
        op = dcnv4_reference if self.use_reference else dcnv4
        out = op(value, offset_mask.to(value.dtype), **self._op_kwargs())
        if self.center_feature_scale:
            out = self._center_feature_blend(out, value, out)
        return out if self.without_pointwise else self.output_proj(out)
