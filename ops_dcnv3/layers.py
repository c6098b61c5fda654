"""Small layout, norm and activation helpers shared by DCNv3 and the InternImage backbone.

They live here once so that every user builds norms the same way, which keeps the
submodule indices (and so the checkpoint key names) identical to the released models.
"""

from typing import Literal

import torch
from torch import nn

__all__ = ['to_channels_first', 'to_channels_last', 'build_layout_norm', 'build_act_layer']

Layout = Literal['channels_first', 'channels_last']
_LAYOUTS = ('channels_first', 'channels_last')


class to_channels_first(nn.Module):  # noqa: N801 (lower case kept: it names the checkpoint layout)
    """Permutes (N, H, W, C) to (N, C, H, W)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 3, 1, 2)


class to_channels_last(nn.Module):  # noqa: N801
    """Permutes (N, C, H, W) to (N, H, W, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1)


def build_layout_norm(
    dim: int,
    norm_layer: str,
    in_format: Layout = 'channels_last',
    out_format: Layout = 'channels_last',
    eps: float = 1e-6,
) -> nn.Sequential:
    """Builds a norm wrapped in the permutes its input and output layouts need.

    LayerNorm normalises the last dimension, so it runs channels-last; BatchNorm2d runs
    channels-first. The permutes sit before/after the norm inside one ``nn.Sequential``,
    which fixes the norm's index (and the checkpoint keys): e.g. LN with channels-first
    input is ``[to_channels_last, LayerNorm]``, so its weight is ``<name>.1.weight``.

    Args:
        dim (int): Number of channels.
        norm_layer (str): ``'LN'`` (LayerNorm) or ``'BN'`` (BatchNorm2d).
        in_format (str): Layout of the input, ``'channels_last'`` or ``'channels_first'``.
            Defaults to ``'channels_last'``.
        out_format (str): Layout of the output. Defaults to ``'channels_last'``.
        eps (float): LayerNorm epsilon (BatchNorm keeps its default). Defaults to 1e-6.
    """
    for name, value in (('in_format', in_format), ('out_format', out_format)):
        if value not in _LAYOUTS:
            raise ValueError(f'{name} must be one of {_LAYOUTS}, got {value!r}')
    layers = []
    if norm_layer == 'BN':
        if in_format == 'channels_last':
            layers.append(to_channels_first())
        layers.append(nn.BatchNorm2d(dim))
        if out_format == 'channels_last':
            layers.append(to_channels_last())
    elif norm_layer == 'LN':
        if in_format == 'channels_first':
            layers.append(to_channels_last())
        layers.append(nn.LayerNorm(dim, eps=eps))
        if out_format == 'channels_first':
            layers.append(to_channels_first())
    else:
        raise ValueError(f"norm_layer must be 'LN' or 'BN', got {norm_layer!r}")
    return nn.Sequential(*layers)


_ACTIVATIONS = {'GELU': nn.GELU, 'ReLU': nn.ReLU, 'SiLU': nn.SiLU}


def build_act_layer(act_layer: str) -> nn.Module:
    """Builds an activation by name: ``'GELU'``, ``'ReLU'`` or ``'SiLU'``."""
    if act_layer not in _ACTIVATIONS:
        raise ValueError(f'act_layer must be one of {sorted(_ACTIVATIONS)}, got {act_layer!r}')
    return _ACTIVATIONS[act_layer]()
