"""The DCNv3 module: InternImage's token mixer around the core operator."""

import warnings
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .functional import MAX_SOFTMAX_POINTS, dcnv3
from .layers import build_act_layer, build_layout_norm
from .reference import dcnv3_reference

__all__ = ['DCNv3']


class DCNv3(nn.Module):
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
        super().__init__()
        if channels % group != 0:
            raise ValueError(
                f'channels must be divisible by group, got channels={channels}, group={group}'
            )
        dw_kernel_size = kernel_size if dw_kernel_size is None else dw_kernel_size
        if dw_kernel_size % 2 == 0:
            raise ValueError(
                f'dw_kernel_size must be odd (same-size depthwise conv), got {dw_kernel_size}'
            )
        if 2 * pad != dilation * (kernel_size - 1):
            # Offsets and masks come from a same-size depthwise conv, so the core op must
            # keep the spatial size too (up to the shared stride).
            raise ValueError(
                f'pad must be dilation * (kernel_size - 1) / 2 = '
                f'{dilation * (kernel_size - 1) / 2:g} so that the output size '
                f'matches the offset branch, got pad={pad}'
            )
        if remove_center and kernel_size % 2 == 0:
            raise ValueError(f'remove_center requires an odd kernel_size, got {kernel_size}')
        if center_feature_scale and stride != 1:
            raise ValueError(
                'center_feature_scale blends the output with the input projection, '
                f'so it needs stride=1, got stride={stride}'
            )
        group_channels = channels // group
        if group_channels & (group_channels - 1) != 0:
            warnings.warn(
                f'DCNv3 runs fastest when channels // group is a power of two; got '
                f'{group_channels} (channels={channels}, group={group})'
            )

        self.channels = channels
        self.kernel_size = kernel_size
        self.dw_kernel_size = dw_kernel_size
        self.stride = stride
        self.pad = pad
        self.dilation = dilation
        self.group = group
        self.group_channels = group_channels
        self.offset_scale = offset_scale
        self.center_feature_scale = center_feature_scale
        self.remove_center = bool(remove_center)
        self.use_reference = use_reference
        self.num_points = kernel_size * kernel_size - int(self.remove_center)

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
        if center_feature_scale:
            self.center_feature_scale_proj_weight = nn.Parameter(torch.zeros(group, channels))
            self.center_feature_scale_proj_bias = nn.Parameter(torch.zeros(group))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero offsets and uniform point weights at start; xavier projections."""
        for layer in (self.offset, self.mask):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        for layer in (self.input_proj, self.output_proj):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        if self.center_feature_scale:
            nn.init.zeros_(self.center_feature_scale_proj_weight)
            nn.init.zeros_(self.center_feature_scale_proj_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, H, W, C) -> (N, H_out, W_out, C)."""
        if x.dim() != 4 or x.shape[-1] != self.channels:
            raise ValueError(
                f'x must be channels-last (N, H, W, {self.channels}), got shape {tuple(x.shape)}'
            )
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
            kernel_size=self.kernel_size,
            stride=self.stride,
            padding=self.pad,
            dilation=self.dilation,
            group=self.group,
            offset_scale=self.offset_scale,
            remove_center=self.remove_center,
            softmax_mask=fuse_softmax,
        )
        if self.center_feature_scale:
            scale = torch.sigmoid(
                F.linear(
                    query,
                    self.center_feature_scale_proj_weight,
                    self.center_feature_scale_proj_bias,
                )
            )
            scale = scale.repeat_interleave(self.group_channels, dim=-1)  # (N, H, W, C)
            out = out * (1 - scale) + value * scale
        return self.output_proj(out)

    def extra_repr(self) -> str:
        return (
            f'channels={self.channels}, kernel_size={self.kernel_size}, stride={self.stride}, '
            f'pad={self.pad}, dilation={self.dilation}, group={self.group}, '
            f'offset_scale={self.offset_scale}, remove_center={self.remove_center}, '
            f'center_feature_scale={self.center_feature_scale}'
        )
