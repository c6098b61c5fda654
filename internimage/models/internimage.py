"""InternImage backbone (CVPR 2023): a CNN whose token mixer is the DCNv3 deformable conv,
and FlashInternImage (CVPR 2024), the same network with the DCNv4 token mixer.

One file holds the variant table, the stem, the block, the stage, the downsampling layer and
the backbone. Submodule names follow the released checkpoints (``patch_embed.conv1``,
``levels.{i}.blocks.{j}.dcn``, ``levels.{i}.norm``, ``levels.{i}.downsample`` ...), so an
official state dict loads without renaming; ``internimage/checkpoint/`` only strips
wrappers and prefixes.
"""

import copy
from numbers import Number
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.utils.checkpoint as cp
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule, initialize
from mmengine.registry import MODELS
from torch import nn

from ops_dcnv3 import DCNv3, DCNv4, build_act_layer, build_layout_norm

from ..checkpoint import load_backbone_checkpoint

__all__ = [
    'InternImage',
    'FlashInternImage',
    'InternImageLayer',
    'InternImageStage',
    'StemLayer',
    'DownsampleLayer',
    'MLPLayer',
    'layer_id_of_param',
]

# Keys of an ``arch`` dict: the first three are required, the rest default as below.
_REQUIRED_ARCH_KEYS = ('channels', 'depths', 'groups')
_DEFAULT_ARCH = {
    'layer_scale': None,  # initial gamma1/gamma2; None: no layer scale
    'offset_scale': 1.0,  # DCNv3 offset scale
    'post_norm': False,  # post-norm blocks
    'dw_kernel_size': None,  # DCNv3 depthwise kernel; None: 3
    'res_post_norm': False,  # res-post-norm blocks (H)
    'level2_post_norm_block_ids': None,  # stage-3 blocks followed by an extra norm (H, G)
    'center_feature_scale': False,  # DCNv3 centre feature scale (H, G)
    'remove_center': False,  # DCNv3 without the centre sampling point
    'mlp_ratio': 4.0,  # MLP hidden width / channels
    # The token mixer and the biases that differ between the InternImage (DCNv3) and the
    # FlashInternImage (DCNv4) releases; FlashInternImage.default_arch overrides them.
    'core_op': 'DCNv3',
    'dcn_output_bias': True,
    'mlp_fc2_bias': True,
}
_CORE_OPS = {'DCNv3': DCNv3, 'DCNv4': DCNv4}
# Settings the released variants share (see docs/architecture.md for the whole table).
#: The backbone's default init (the official ``_init_weights``) as mmengine initializers:
#: Linear trunc-normal(std 0.02) with zero bias, LayerNorm weight 1 and bias 0.
DEFAULT_INIT_CFG = [
    dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.0),
    dict(type='Constant', layer='LayerNorm', val=1.0, bias=0.0),
]
_SCALED_POST_NORM = dict(layer_scale=1e-5, post_norm=True)  # S, B, L, XL
_L_XL = dict(_SCALED_POST_NORM, offset_scale=2.0)
_H_G = dict(dw_kernel_size=5, center_feature_scale=True)


class StemLayer(nn.Module):
    """Two stride-2 3x3 convs, NCHW image in, channels-last features out (stride 4).

    Args:
        in_channels (int): Image channels. Defaults to 3.
        out_channels (int): Output channels C (the first conv gives C // 2). Defaults to 64.
        act_layer (str): Activation between the convs. Defaults to ``'GELU'``.
        norm_layer (str): Norm after each conv. Defaults to ``'LN'``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 64,
        act_layer: str = 'GELU',
        norm_layer: str = 'LN',
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels // 2, kernel_size=3, stride=2, padding=1)
        self.norm1 = build_layout_norm(
            out_channels // 2, norm_layer, 'channels_first', 'channels_first'
        )
        self.act = build_act_layer(act_layer)
        self.conv2 = nn.Conv2d(out_channels // 2, out_channels, kernel_size=3, stride=2, padding=1)
        self.norm2 = build_layout_norm(out_channels, norm_layer, 'channels_first', 'channels_last')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.norm1(self.conv1(x)))
        return self.norm2(self.conv2(x))


class DownsampleLayer(nn.Module):
    """Stride-2 3x3 conv (no bias) doubling the channels, then a norm; channels-last in/out.

    Args:
        channels (int): Input channels (output has twice as many).
        norm_layer (str): Norm after the conv. Defaults to ``'LN'``.
    """

    def __init__(self, channels: int, norm_layer: str = 'LN') -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            channels, 2 * channels, kernel_size=3, stride=2, padding=1, bias=False
        )
        self.norm = build_layout_norm(2 * channels, norm_layer, 'channels_first', 'channels_last')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x.permute(0, 3, 1, 2)))


class MLPLayer(nn.Module):
    """Two-layer MLP on the last dimension.

    Args:
        in_features (int): Input and output features.
        hidden_features (int): Hidden features.
        act_layer (str): Activation. Defaults to ``'GELU'``.
        drop (float): Dropout after each linear. Defaults to 0.
        fc2_bias (bool): Bias of the second linear (FlashInternImage T/S/B have none).
            Defaults to True.
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: int,
        act_layer: str = 'GELU',
        drop: float = 0.0,
        fc2_bias: bool = True,
    ) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = build_act_layer(act_layer)
        self.fc2 = nn.Linear(hidden_features, in_features, bias=fc2_bias)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class InternImageLayer(nn.Module):
    """One InternImage block: a deformable token mixer (DCNv3, or DCNv4 for
    FlashInternImage) and an MLP, each in a residual branch.

    Branch ``f`` (DCNv3 or MLP) with its norm ``n`` is, by variant:
    pre-norm ``x + dp(g * f(n(x)))``; post-norm ``x + dp(g * n(f(x)))``; res-post-norm
    ``x + dp(g * rpn(f(n(x))))``, where ``g`` is the layer-scale vector (1 without one).

    Args:
        channels (int): Channels C.
        groups (int): DCNv3 groups.
        mlp_ratio (float): MLP hidden size / C. Defaults to 4.
        drop_path (float): Stochastic depth rate of both branches. Defaults to 0.
        act_layer (str): Activation. Defaults to ``'GELU'``.
        norm_layer (str): Norm inside DCNv3's offset branch. Defaults to ``'LN'``.
        post_norm (bool): Post-norm branches. Defaults to False.
        res_post_norm (bool): Res-post-norm branches (InternImage-H). Defaults to False.
        layer_scale (float, optional): Initial value of the learnable per-channel branch
            scales ``gamma1``/``gamma2``; None disables them. Defaults to None.
        offset_scale (float): DCNv3 offset scale. Defaults to 1.
        dw_kernel_size (int, optional): DCNv3 depthwise kernel (None: 3). Defaults to None.
        center_feature_scale (bool): DCNv3 centre feature scale. Defaults to False.
        remove_center (bool): DCNv3 without the centre point. Defaults to False.
        with_cp (bool): Recompute the block in backward (gradient checkpointing) to save
            memory. Defaults to False.
        use_reference (bool): Use the pure-PyTorch op. Defaults to False.
        core_op (str): Token mixer, ``'DCNv3'`` or ``'DCNv4'``. DCNv4 is built as the
            official FlashInternImage builds it: from channels, groups, offset_scale,
            dw_kernel_size and dcn_output_bias (act_layer, norm_layer and
            center_feature_scale concern DCNv3 only). Defaults to ``'DCNv3'``.
        dcn_output_bias (bool): Bias of the mixer's output projection (DCNv4 only; DCNv3
            always has one). Defaults to True.
        mlp_fc2_bias (bool): Bias of the MLP's second linear. Defaults to True.
    """

    def __init__(
        self,
        channels: int,
        groups: int,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        act_layer: str = 'GELU',
        norm_layer: str = 'LN',
        post_norm: bool = False,
        res_post_norm: bool = False,
        layer_scale: Optional[float] = None,
        offset_scale: float = 1.0,
        dw_kernel_size: Optional[int] = None,
        center_feature_scale: bool = False,
        remove_center: bool = False,
        with_cp: bool = False,
        use_reference: bool = False,
        core_op: str = 'DCNv3',
        dcn_output_bias: bool = True,
        mlp_fc2_bias: bool = True,
    ) -> None:
        super().__init__()
        if post_norm and res_post_norm:
            raise ValueError('post_norm and res_post_norm are exclusive; got both True')
        if core_op not in _CORE_OPS:
            raise ValueError(f'core_op must be one of {sorted(_CORE_OPS)}, got {core_op!r}')
        self.post_norm = post_norm
        self.with_cp = with_cp
        self.norm1 = build_layout_norm(channels, 'LN')
        mixer = dict(
            channels=channels,
            group=groups,
            offset_scale=offset_scale,
            dw_kernel_size=dw_kernel_size,
            remove_center=remove_center,
            use_reference=use_reference,
        )
        if core_op == 'DCNv3':
            if not dcn_output_bias:
                raise ValueError("dcn_output_bias=False needs core_op='DCNv4'")
            mixer.update(
                act_layer=act_layer,
                norm_layer=norm_layer,
                center_feature_scale=center_feature_scale,
            )
        else:
            mixer.update(output_bias=dcn_output_bias)
        self.dcn = _CORE_OPS[core_op](**mixer)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = build_layout_norm(channels, 'LN')
        self.mlp = MLPLayer(
            channels, int(channels * mlp_ratio), act_layer=act_layer, fc2_bias=mlp_fc2_bias
        )
        self.layer_scale = layer_scale
        if layer_scale is not None:
            self.gamma1 = nn.Parameter(torch.full((channels,), float(layer_scale)))
            self.gamma2 = nn.Parameter(torch.full((channels,), float(layer_scale)))
        self.res_post_norm = res_post_norm
        if res_post_norm:
            self.res_post_norm1 = build_layout_norm(channels, 'LN')
            self.res_post_norm2 = build_layout_norm(channels, 'LN')

    def _branch(
        self,
        x: torch.Tensor,
        fn: nn.Module,
        norm: nn.Module,
        res_post_norm: Optional[nn.Module],
        gamma: Optional[torch.Tensor],
    ) -> torch.Tensor:
        if self.post_norm:
            out = norm(fn(x))
        else:
            out = fn(norm(x))
            if res_post_norm is not None:
                out = res_post_norm(out)
        if gamma is not None:
            out = gamma * out
        return x + self.drop_path(out)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        scaled = self.layer_scale is not None
        x = self._branch(
            x,
            self.dcn,
            self.norm1,
            self.res_post_norm1 if self.res_post_norm else None,
            self.gamma1 if scaled else None,
        )
        return self._branch(
            x,
            self.mlp,
            self.norm2,
            self.res_post_norm2 if self.res_post_norm else None,
            self.gamma2 if scaled else None,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: channels-last (N, H, W, C) -> same shape."""
        if self.with_cp and self.training and torch.is_grad_enabled():
            return cp.checkpoint(self._forward, x, use_reentrant=False)
        return self._forward(x)


class InternImageStage(nn.Module):
    """A stage ("level"): blocks, optional extra post-norms, closing norm, downsampling.

    Args:
        channels (int): Channels of the stage.
        depth (int): Number of blocks.
        groups (int): DCNv3 groups.
        downsample (bool): End with a :class:`DownsampleLayer`. Defaults to True.
        drop_path (float | Sequence[float]): Stochastic depth rate, one value for all blocks
            or one per block. Defaults to 0.
        post_norm (bool): Post-norm blocks; such stages have no closing norm unless
            ``center_feature_scale``. Defaults to False.
        center_feature_scale (bool): DCNv3 centre feature scale. Defaults to False.
        post_norm_block_ids (Sequence[int], optional): Blocks followed by an extra LayerNorm
            (``post_norms.k`` after block ``post_norm_block_ids[k]``). Defaults to None.
        **block_kwargs: Passed to every :class:`InternImageLayer` (mlp_ratio, act_layer,
            norm_layer, res_post_norm, layer_scale, offset_scale, dw_kernel_size,
            remove_center, with_cp, use_reference, core_op, dcn_output_bias, mlp_fc2_bias).
    """

    def __init__(
        self,
        channels: int,
        depth: int,
        groups: int,
        downsample: bool = True,
        drop_path: Union[float, Sequence[float]] = 0.0,
        post_norm: bool = False,
        center_feature_scale: bool = False,
        post_norm_block_ids: Optional[Sequence[int]] = None,
        norm_layer: str = 'LN',
        **block_kwargs,
    ) -> None:
        super().__init__()
        rates = [float(drop_path)] * depth if isinstance(drop_path, Number) else list(drop_path)
        if len(rates) != depth:
            raise ValueError(f'drop_path must be a float or {depth} rates, got {len(rates)}')
        self.blocks = nn.ModuleList(
            [
                InternImageLayer(
                    channels,
                    groups,
                    drop_path=rates[i],
                    post_norm=post_norm,
                    center_feature_scale=center_feature_scale,
                    norm_layer=norm_layer,
                    **block_kwargs,
                )
                for i in range(depth)
            ]
        )
        # A post-norm stage's last block already ends in a norm; centre-feature-scale
        # models (H/G) keep the closing norm regardless.
        self.has_norm = not post_norm or center_feature_scale
        if self.has_norm:
            self.norm = build_layout_norm(channels, 'LN')
        self.post_norm_block_ids = list(post_norm_block_ids or [])
        if self.post_norm_block_ids:
            bad = [i for i in self.post_norm_block_ids if not 0 <= i < depth]
            if bad:
                raise ValueError(f'post_norm_block_ids must index blocks 0..{depth - 1}, got {bad}')
            self.post_norms = nn.ModuleList(
                [build_layout_norm(channels, 'LN') for _ in self.post_norm_block_ids]
            )
        self.downsample = DownsampleLayer(channels, norm_layer) if downsample else None

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Returns (stage output before downsampling, input of the next stage)."""
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.post_norm_block_ids:
                x = self.post_norms[self.post_norm_block_ids.index(i)](x)
        if self.has_norm:
            x = self.norm(x)
        return x, (self.downsample(x) if self.downsample is not None else x)


def layer_id_of_param(param_name: str, depths: Sequence[int], prefix: str = 'backbone.') -> int:
    """Layer id of a parameter for layer-wise lr decay, numbered as the official constructor.

    Stem: 0. ``levels.s.<part>.k.*`` (a block, or H/G's extra post-norm ``post_norms.k``):
    ``k + 1 + sum(depths[:s])``. The closing norm and downsampling of stage ``s``:
    ``1 + sum(depths[:min(s, 2) + 1])``: the official rule gives the last stage's closing
    norm the id of the stage before (``1 + d0 + d1 + d2``), not ``sum(depths) + 1``. Anything else,
    including every parameter outside the backbone (name not starting with ``prefix``):
    ``sum(depths) + 1``.

    Args:
        param_name (str): Parameter name in the model being optimised.
        depths (Sequence[int]): Blocks per stage.
        prefix (str): Name prefix of the backbone's parameters. Defaults to ``'backbone.'``.

    Returns:
        int: the layer id, ``0 .. sum(depths) + 1``.
    """
    num_blocks = sum(depths)
    if not param_name.startswith(prefix):
        return num_blocks + 1
    parts = param_name[len(prefix) :].split('.')
    if parts[0] == 'patch_embed':
        return 0
    if parts[0] == 'levels' and len(parts) > 3:
        stage = int(parts[1])
        if parts[2] in ('norm', 'downsample'):
            return 1 + sum(depths[: min(stage, 2) + 1])
        # blocks.k and (H/G) post_norms.k: the official rule reads the index k the same way.
        return int(parts[3]) + 1 + sum(depths[:stage])
    return num_blocks + 1


@MODELS.register_module()
class InternImage(BaseModule):
    """InternImage backbone.

    A stem (stride 4) and four stages of DCNv3 blocks with stride-2 downsampling between
    them; stage ``i`` has ``channels * 2**i`` channels. Features run channels-last inside;
    ``forward`` takes an NCHW image and returns NCHW stage features.

    Args:
        arch (str | dict): Variant name (``'t'``, ``'s'``, ``'b'``, ``'l'``, ``'xl'``,
            ``'h'``, ``'g'``) or a dict with ``channels``, ``depths``, ``groups`` and
            optionally ``layer_scale``, ``offset_scale``, ``post_norm``, ``dw_kernel_size``,
            ``res_post_norm``, ``level2_post_norm_block_ids``, ``center_feature_scale``,
            ``remove_center``, ``mlp_ratio``, ``core_op`` (``'DCNv3'``/``'DCNv4'``),
            ``dcn_output_bias``, ``mlp_fc2_bias``. Defaults to ``'t'``.
        in_channels (int): Image channels. Defaults to 3.
        out_indices (Sequence[int] | int): Stages whose outputs are returned (negative
            indices count from the end). Defaults to (0, 1, 2, 3).
        drop_path_rate (float): Stochastic depth rate of the last block; it rises linearly
            from 0 over all blocks. Defaults to 0.
        with_cp (bool): Gradient checkpointing per block. Defaults to False.
        frozen_stages (int): -1 freezes nothing, 0 the stem, ``i >= 1`` the stem and
            stages ``0..i-1`` (kept in eval mode, no gradients). Defaults to -1.
        layer_scale (float, optional): Overrides the arch's layer scale (downstream
            recipes set 1.0 for T/S/B). Defaults to None (keep the arch's).
        offset_scale (float, optional): Overrides the arch's DCNv3 offset scale.
            Defaults to None (keep the arch's).
        act_layer (str): Activation. Defaults to ``'GELU'``.
        norm_layer (str): Norm of stem, downsampling and DCNv3 branch. Defaults to ``'LN'``.
        use_reference (bool): Run the pure-PyTorch DCNv3 op instead of the compiled one
            (slow; for machines without the extension). Defaults to False.
        init_cfg (dict | list[dict], optional): Initialisation config;
            ``dict(type='Pretrained', checkpoint=PATH)`` loads released classification,
            detection or segmentation checkpoints; PATH may be a local file, an
            ``http(s)://`` URL or any path mmengine's ``CheckpointLoader`` reads.
            ``trust_checkpoint=True`` in it allows a full unpickle of a trusted file
            that pickles non-tensor objects. Defaults to None.
    """

    arch_settings: Dict[str, dict] = {
        't': dict(channels=64, depths=[4, 4, 18, 4], groups=[4, 8, 16, 32]),
        's': dict(channels=80, depths=[4, 4, 21, 4], groups=[5, 10, 20, 40], **_SCALED_POST_NORM),
        'b': dict(channels=112, depths=[4, 4, 21, 4], groups=[7, 14, 28, 56], **_SCALED_POST_NORM),
        'l': dict(channels=160, depths=[5, 5, 22, 5], groups=[10, 20, 40, 80], **_L_XL),
        'xl': dict(channels=192, depths=[5, 5, 24, 5], groups=[12, 24, 48, 96], **_L_XL),
        'h': dict(
            channels=320,
            depths=[6, 6, 32, 6],
            groups=[10, 20, 40, 80],
            res_post_norm=True,
            level2_post_norm_block_ids=[5, 11, 17, 23, 29],
            **_H_G,
        ),
        'g': dict(
            channels=512,
            depths=[2, 2, 48, 4],
            groups=[16, 32, 64, 128],
            post_norm=True,
            level2_post_norm_block_ids=list(range(5, 48, 6)),
            **_H_G,
        ),
    }
    # Values of the optional arch keys an ``arch`` dict (or table entry) leaves out.
    default_arch: Dict[str, object] = _DEFAULT_ARCH
    num_stages = 4

    def __init__(
        self,
        arch: Union[str, dict] = 't',
        in_channels: int = 3,
        out_indices: Union[int, Sequence[int]] = (0, 1, 2, 3),
        drop_path_rate: float = 0.0,
        with_cp: bool = False,
        frozen_stages: int = -1,
        layer_scale: Optional[float] = None,
        offset_scale: Optional[float] = None,
        act_layer: str = 'GELU',
        norm_layer: str = 'LN',
        use_reference: bool = False,
        init_cfg: Optional[Union[dict, List[dict]]] = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.arch = self._parse_arch(arch)
        if layer_scale is not None:
            self.arch['layer_scale'] = layer_scale
        if offset_scale is not None:
            self.arch['offset_scale'] = offset_scale
        settings = self.arch
        self.depths = list(settings['depths'])
        self.num_features = [settings['channels'] * 2**i for i in range(self.num_stages)]
        self.out_indices = self._parse_out_indices(out_indices)
        self.out_channels = [self.num_features[i] for i in self.out_indices]
        if not isinstance(frozen_stages, int) or not -1 <= frozen_stages <= self.num_stages:
            raise ValueError(
                f'frozen_stages must be an int in [-1, {self.num_stages}], got {frozen_stages!r}'
            )
        self.frozen_stages = frozen_stages
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f'drop_path_rate must be in [0, 1), got {drop_path_rate}')

        self.patch_embed = StemLayer(in_channels, settings['channels'], act_layer, norm_layer)
        num_blocks = sum(self.depths)
        # Plain Python (not torch.linspace) so the model also builds under a meta device.
        rates = [drop_path_rate * i / max(num_blocks - 1, 1) for i in range(num_blocks)]
        self.levels = nn.ModuleList()
        for i in range(self.num_stages):
            first = sum(self.depths[:i])
            self.levels.append(
                InternImageStage(
                    channels=self.num_features[i],
                    depth=self.depths[i],
                    groups=settings['groups'][i],
                    downsample=i < self.num_stages - 1,
                    drop_path=rates[first : first + self.depths[i]],
                    post_norm=settings['post_norm'],
                    center_feature_scale=settings['center_feature_scale'],
                    post_norm_block_ids=settings['level2_post_norm_block_ids'] if i == 2 else None,
                    norm_layer=norm_layer,
                    mlp_ratio=settings['mlp_ratio'],
                    act_layer=act_layer,
                    res_post_norm=settings['res_post_norm'],
                    layer_scale=settings['layer_scale'],
                    offset_scale=settings['offset_scale'],
                    dw_kernel_size=settings['dw_kernel_size'],
                    remove_center=settings['remove_center'],
                    with_cp=with_cp,
                    use_reference=use_reference,
                    core_op=settings['core_op'],
                    dcn_output_bias=settings['dcn_output_bias'],
                    mlp_fc2_bias=settings['mlp_fc2_bias'],
                )
            )
        self._init_default_weights()
        self._freeze_stages()

    # ------------------------------------------------------------------ construction
    @classmethod
    def _parse_arch(cls, arch: Union[str, dict]) -> dict:
        if isinstance(arch, str):
            if arch.lower() not in cls.arch_settings:
                raise ValueError(
                    f'arch must be one of {sorted(cls.arch_settings)} or a dict, got {arch!r}'
                )
            arch = cls.arch_settings[arch.lower()]
        if not isinstance(arch, dict):
            raise TypeError(f'arch must be a str or a dict, got {type(arch).__name__}')
        missing = [k for k in _REQUIRED_ARCH_KEYS if k not in arch]
        unknown = sorted(set(arch) - set(_REQUIRED_ARCH_KEYS) - set(cls.default_arch))
        if missing or unknown:
            raise ValueError(
                f'arch dict: missing keys {missing}, unknown keys {unknown}; '
                f'required {list(_REQUIRED_ARCH_KEYS)}, optional '
                f'{sorted(cls.default_arch)}'
            )
        settings = {**copy.deepcopy(cls.default_arch), **copy.deepcopy(dict(arch))}
        for key in ('depths', 'groups'):
            if len(settings[key]) != cls.num_stages:
                raise ValueError(
                    f'arch {key} must have {cls.num_stages} entries, got {settings[key]}'
                )
        for i, group in enumerate(settings['groups']):
            stage_channels = settings['channels'] * 2**i
            if stage_channels % group:
                raise ValueError(
                    f'arch groups[{i}]={group} must divide the stage channels {stage_channels}'
                )
        if settings['channels'] % 2:
            raise ValueError(f'arch channels must be even, got {settings["channels"]}')
        return settings

    def _parse_out_indices(self, out_indices: Union[int, Sequence[int]]) -> List[int]:
        if isinstance(out_indices, int):
            out_indices = [out_indices]
        parsed = []
        for index in out_indices:
            if not isinstance(index, int) or not -self.num_stages <= index < self.num_stages:
                raise ValueError(
                    f'out_indices must be ints in [-{self.num_stages}, '
                    f'{self.num_stages - 1}], got {tuple(out_indices)}'
                )
            parsed.append(index % self.num_stages)
        if not parsed:
            raise ValueError('out_indices must name at least one stage')
        return parsed

    def _init_default_weights(self) -> None:
        """:data:`DEFAULT_INIT_CFG` through mmengine's initializers, then the mixers' own
        init (zero offsets and point weights), which no initializer expresses: it zeroes
        sub-layers by their role in the op, not by their type."""
        initialize(self, DEFAULT_INIT_CFG)
        for module in self.modules():
            if isinstance(module, (DCNv3, DCNv4)):
                module.reset_parameters()

    def init_weights(self) -> None:
        """Loads ``init_cfg=dict(type='Pretrained', checkpoint=...)`` or re-initialises.

        Without a checkpoint the default init runs again, so model-level init configs
        (e.g. a classifier's trunc-normal for every Linear) cannot clobber DCNv3's
        zero-initialised offset/mask projections.
        """
        init_cfg = self.init_cfg
        if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
            load_backbone_checkpoint(
                self,
                init_cfg['checkpoint'],
                prefix=init_cfg.get('prefix'),
                trust=bool(init_cfg.get('trust_checkpoint', False)),
            )
            self._is_init = True
        elif init_cfg is not None:
            super().init_weights()
        else:
            self._init_default_weights()

    # ------------------------------------------------------------------ freezing
    def _frozen_modules(self) -> List[nn.Module]:
        if self.frozen_stages < 0:
            return []
        return [self.patch_embed, *self.levels[: self.frozen_stages]]

    def _freeze_stages(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'InternImage':
        super().train(mode)
        self._freeze_stages()
        return self

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """x: (N, in_channels, H, W) -> tuple of (N, C_i, H / 2**(i+2), W / 2**(i+2))."""
        if x.dim() != 4:
            raise ValueError(f'x must be an NCHW image batch, got shape {tuple(x.shape)}')
        x = self.patch_embed(x)
        stage_outputs = []
        for level in self.levels:
            out, x = level(x)
            stage_outputs.append(out)
        return tuple(stage_outputs[i].permute(0, 3, 1, 2).contiguous() for i in self.out_indices)

    # ------------------------------------------------------------------ layer decay
    @property
    def num_layers(self) -> int:
        """Layer-decay depth of the backbone (its blocks); ids run 0..num_layers + 1."""
        return sum(self.depths)

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """Layer id of a parameter for layer-wise lr decay (mmpretrain's convention).

        Args:
            param_name (str): Parameter name in the model being optimised.
            prefix (str): Prefix of this backbone's parameter names in that model.
                Defaults to ``''``.

        Returns:
            Tuple[int, int]: (layer id as in :func:`layer_id_of_param`, number of ids
            ``num_layers + 2``); mmpretrain scales the lr by
            ``rate ** (num_ids - 1 - layer_id)``.
        """
        layer_id = layer_id_of_param(param_name, self.depths, prefix)
        return layer_id, self.num_layers + 2


@MODELS.register_module()
class FlashInternImage(InternImage):
    """FlashInternImage backbone (DCNv4, CVPR 2024): InternImage with the DCNv4 token mixer.

    Same stem, stages, downsampling, ``out_indices`` / ``frozen_stages`` / ``init_cfg`` /
    ``get_layer_depth`` contract and checkpoint layout as :class:`InternImage`; each block's
    ``dcn`` is an :class:`ops_dcnv3.DCNv4` (``value_proj``, ``offset_mask``,
    ``offset_mask_dw``, ``output_proj``) and, as in the official release, the MLP's ``fc2``
    and the mixer's ``output_proj`` have no bias unless the arch says so (L has both).

    Args:
        arch (str | dict): ``'t'``, ``'s'``, ``'b'``, ``'l'`` (the official
            ``classification/configs/flash_intern_image_*.yaml`` variants) or a dict as for
            :class:`InternImage` (``core_op`` defaults to ``'DCNv4'``, ``dcn_output_bias`` and
            ``mlp_fc2_bias`` to False). Defaults to ``'t'``.
        **kwargs: As for :class:`InternImage`.
    """

    default_arch: Dict[str, object] = dict(
        _DEFAULT_ARCH, core_op='DCNv4', dcn_output_bias=False, mlp_fc2_bias=False
    )
    arch_settings: Dict[str, dict] = {
        't': dict(channels=64, depths=[4, 4, 18, 4], groups=[4, 8, 16, 32]),
        's': dict(
            channels=80,
            depths=[4, 4, 21, 4],
            groups=[5, 10, 20, 40],
            layer_scale=1e-5,
            post_norm=True,
            dw_kernel_size=3,
        ),
        'b': dict(
            channels=112,
            depths=[4, 4, 21, 4],
            groups=[7, 14, 28, 56],
            layer_scale=1e-5,
            offset_scale=0.5,
            post_norm=True,
            dw_kernel_size=3,
        ),
        'l': dict(
            channels=160,
            depths=[5, 5, 22, 5],
            groups=[10, 20, 40, 80],
            layer_scale=1e-5,
            offset_scale=2.0,
            post_norm=True,
            dw_kernel_size=3,
            dcn_output_bias=True,
            mlp_fc2_bias=True,
        ),
    }
