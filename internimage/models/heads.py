"""Classification heads of the released InternImage models, as mmpretrain heads.

Submodule names follow the official classifiers (``conv_head``; ``dcnv3_head_x4``,
``dcnv3_head_x3``, ``clip_projector``, ``fc_norm``), so converting a released checkpoint is
a prefix change plus ``head.* -> fc.*`` (see ``internimage/checkpoint/``).
"""

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.registry import MODELS
from mmpretrain.models.heads import ClsHead
from torch import nn

from ops_dcnv3 import build_act_layer, build_layout_norm

__all__ = ['InternImageClsHead', 'InternImageAttnPoolClsHead', 'AttentionPooling']

_LINEAR_INIT = dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.0)


class _PooledLinearClsHead(ClsHead):
    """What both heads share: ``forward`` is the Linear ``fc`` on ``pre_logits``, and
    the Linears start trunc-normal(0.02)."""

    def __init__(
        self, num_classes: int, in_channels: int, init_cfg: Optional[dict], **kwargs
    ) -> None:
        super().__init__(init_cfg=init_cfg, **kwargs)
        if num_classes <= 0:
            raise ValueError(f'num_classes must be positive, got {num_classes}')
        self.num_classes = num_classes
        self.in_channels = in_channels

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        return self.fc(self.pre_logits(feats))


@MODELS.register_module()
class InternImageClsHead(_PooledLinearClsHead):
    """Head of InternImage-T/S/B/L/XL: 1x1 conv to ``cls_scale`` x channels, BN, act,
    global average pooling, linear classifier.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Channels of the last backbone stage.
        cls_scale (float): Width of the 1x1 conv relative to ``in_channels``.
            Defaults to 1.5.
        act_layer (str): Activation. Defaults to ``'GELU'``.
        **kwargs: :class:`mmpretrain.models.heads.ClsHead` arguments (``loss``, ``topk``,
            ``cal_acc``, ``init_cfg``; the default init is trunc-normal(0.02) Linears).
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        cls_scale: float = 1.5,
        act_layer: str = 'GELU',
        init_cfg: Optional[dict] = _LINEAR_INIT,
        **kwargs,
    ) -> None:
        super().__init__(num_classes, in_channels, init_cfg, **kwargs)
        mid_channels = int(in_channels * cls_scale)
        self.conv_head = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, kernel_size=1, bias=False),
            build_layout_norm(mid_channels, 'BN', 'channels_first', 'channels_first'),
            build_act_layer(act_layer),
        )
        self.fc = nn.Linear(mid_channels, num_classes)

    def pre_logits(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        """Last NCHW stage feature -> pooled (N, cls_scale * C) vector."""
        x = self.conv_head(feats[-1])
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


class AttentionPooling(nn.Module):
    """Multi-head attention with a single query: the mean token attends over all tokens.

    Query, key and value are layer-normalised separately (``norm1_q/k/v``); q/k/v
    projections have no Linear bias but separate ``q_bias``/``k_bias``/``v_bias``
    parameters, as in the released InternImage-H/G heads.

    Args:
        dim (int): Token channels.
        num_heads (int): Attention heads. Defaults to 16.
        out_dim (int, optional): Output channels (None: ``dim``). Defaults to None.
    """

    def __init__(self, dim: int, num_heads: int = 16, out_dim: Optional[int] = None) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'dim ({dim}) must be divisible by num_heads ({num_heads})')
        self.num_heads = num_heads
        self.norm1_q = build_layout_norm(dim, 'LN')
        self.norm1_k = build_layout_norm(dim, 'LN')
        self.norm1_v = build_layout_norm(dim, 'LN')
        self.cross_dcn = _CrossAttention(dim, num_heads, out_dim or dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens: (N, L, dim) -> (N, out_dim)."""
        query = self.norm1_q(tokens.mean(1, keepdim=True))
        return self.cross_dcn(query, self.norm1_k(tokens), self.norm1_v(tokens)).squeeze(1)


class _CrossAttention(nn.Module):
    """q/k/v projections with separate biases and an output projection (names as released)."""

    def __init__(self, dim: int, num_heads: int, out_dim: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.k_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, out_dim)

    def _heads(self, x: torch.Tensor, layer: nn.Linear, bias: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        x = F.linear(x, layer.weight, bias)
        return x.view(batch, length, self.num_heads, -1).transpose(1, 2)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        q = self._heads(query, self.q, self.q_bias)
        k = self._heads(key, self.k, self.k_bias)
        v = self._heads(value, self.v, self.v_bias)
        out = F.scaled_dot_product_attention(q, k, v)  # scale 1/sqrt(head_dim)
        return self.proj(out.transpose(1, 2).flatten(2))


@MODELS.register_module()
class InternImageAttnPoolClsHead(_PooledLinearClsHead):
    """CLIP-style head of InternImage-H/G.

    Stage 4 goes through a 1x1 conv to ``4 * embed_dim`` and PixelShuffle(2) (back to
    stride 16), stage 3 through a 1x1 conv to ``embed_dim``; their sum is pooled by
    :class:`AttentionPooling` (mean-token query) to ``out_dim``, layer-normalised and
    classified. Needs the backbone's last two stages (``out_indices=(2, 3)``).

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Channels of the last backbone stage (stage 3 has half).
        embed_dim (int): Token channels of the pooling block. Defaults to 1024.
        num_heads (int): Attention heads. Defaults to 16.
        out_dim (int): Channels after pooling. Defaults to 768.
        **kwargs: :class:`mmpretrain.models.heads.ClsHead` arguments.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        embed_dim: int = 1024,
        num_heads: int = 16,
        out_dim: int = 768,
        init_cfg: Optional[dict] = _LINEAR_INIT,
        **kwargs,
    ) -> None:
        super().__init__(num_classes, in_channels, init_cfg, **kwargs)
        self.dcnv3_head_x4 = nn.Sequential(
            nn.Conv2d(in_channels, embed_dim * 4, kernel_size=1), nn.PixelShuffle(2)
        )
        self.dcnv3_head_x3 = nn.Conv2d(in_channels // 2, embed_dim, kernel_size=1)
        self.clip_projector = AttentionPooling(embed_dim, num_heads, out_dim)
        self.fc_norm = build_layout_norm(out_dim, 'LN')
        self.fc = nn.Linear(out_dim, num_classes)

    def pre_logits(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        if len(feats) < 2:
            raise ValueError(
                'InternImageAttnPoolClsHead needs the last two backbone stages; '
                'set the backbone out_indices=(2, 3)'
            )
        stage3, stage4 = feats[-2], feats[-1]
        x = self.dcnv3_head_x4(stage4) + self.dcnv3_head_x3(stage3)
        tokens = x.flatten(2).transpose(1, 2)
        return self.fc_norm(self.clip_projector(tokens))
