"""CB-InternImage (CBNetV2 composite backbone) and the CB-DINO detector parts.

The official release (``detection/mmdet_custom``: ``backbones/cbnet.py``,
``necks/cbnet_channel_mapper.py``, ``dense_heads/cbdino_head.py``,
``detectors/cbnet_dino.py``, mmdet 2.x) runs two InternImage branches: the first ("assisting")
branch sees the image; each stage of the second ("lead") branch adds, to its input, a
gated sum of 1x1-projected, nearest-resized outputs of the first branch's stages at the
same or a deeper level. The second branch starts from the first one's stem output (it has no
stem of its own). In training the detection head runs on both branches' features and the
first branch's losses are weighted 0.5; at test time only the second branch's features go
to the head.

Here the same model is written for the OpenMMLab 2.0 stack: each branch is our
:class:`~internimage.models.InternImage`, the neck is mmdet 3.x's ``ChannelMapper`` and the
detector and head are mmdet 3.x's ``DINO`` / ``DINOHead``. Parameter names follow the
official checkpoint (``cb_modules.{0,1}.*``, ``cb_modules.1.gamma{i}``,
``cb_linears.{i}.{j}.*``).
"""

from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmdet.models.dense_heads import DINOHead
from mmdet.models.detectors import DINO
from mmdet.models.necks import ChannelMapper
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch import Tensor, nn

from .internimage import InternImage

__all__ = ['CBInternImage', 'CBChannelMapper', 'CBDINOHead', 'CBDINO']

_ALL_STAGES = (0, 1, 2, 3)


@MODELS.register_module()
class CBInternImage(BaseModule):
    """Composite InternImage backbone (CBNetV2, two branches), as the official ``CBInternImage``.

    Stage ``i`` of the lead branch (``cb_modules.1``) adds
    ``gamma_i * sum_j resize(cb_linears[i][j](first[i + j]))`` to its input, where
    ``first[k]`` is stage ``k``'s output of the assisting branch (``cb_modules.0``),
    ``cb_linears[i][j]`` a 1x1 conv from stage ``i + j``'s width to stage ``i``'s (identity
    for ``j = 0``), ``resize`` nearest interpolation to the lead branch's stage-``i``
    input size and ``gamma_i`` a per-channel gate that starts at zero (so training
    starts from two copies of the single-branch model).

    Args:
        arch (str | dict): InternImage variant of both branches (see :class:`InternImage`).
            Defaults to ``'h'``.
        out_indices (Sequence[Sequence[int]]): Stages each branch returns. The assisting
            branch must give all four (the composite connections read them); when it
            gives one stage more than the lead branch its first is dropped from the
            output, as in the official code. Defaults to ``((0, 1, 2, 3), (1, 2, 3))``.
        init_cfg (dict, optional): Initialisation config of the composite module.
            A backbone checkpoint for both branches goes in ``branch_init_cfg``.
            Defaults to None.
        branch_init_cfg (dict, optional): ``init_cfg`` of each branch (e.g. an ImageNet
            checkpoint). Defaults to None.
        **branch_kwargs: Passed to both :class:`InternImage` branches (``drop_path_rate``,
            ``with_cp``, ``layer_scale``, ``offset_scale``, ``use_reference`` ...).
    """

    def __init__(
        self,
        arch: Union[str, dict] = 'h',
        out_indices: Sequence[Sequence[int]] = ((0, 1, 2, 3), (1, 2, 3)),
        init_cfg: Optional[dict] = None,
        branch_init_cfg: Optional[dict] = None,
        **branch_kwargs,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(out_indices) != 2:
            raise ValueError(
                f'out_indices must give the stages of the 2 branches, got {out_indices!r}'
            )
        if tuple(out_indices[0]) != _ALL_STAGES:
            raise ValueError(
                'out_indices[0] (assisting branch) must be (0, 1, 2, 3): the composite '
                f'connections read every stage; got {tuple(out_indices[0])}'
            )
        if 'out_indices' in branch_kwargs or 'init_cfg' in branch_kwargs:
            raise ValueError('give out_indices / branch_init_cfg, not per-branch copies')
        self.out_indices = [tuple(out_indices[0]), tuple(out_indices[1])]
        self.cb_modules = nn.ModuleList(
            [
                InternImage(arch, out_indices=idx, init_cfg=branch_init_cfg, **branch_kwargs)
                for idx in self.out_indices
            ]
        )
        lead = self.cb_modules[1]
        del lead.patch_embed  # the lead branch starts from the assisting branch's stem
        widths = lead.num_features
        for i, width in enumerate(widths):
            lead.register_parameter(f'gamma{i}', nn.Parameter(torch.zeros(width)))
        self.cb_linears = nn.ModuleList(
            nn.ModuleList(
                nn.Conv2d(widths[i + j], widths[i], 1) if j else nn.Identity()
                for j in range(len(widths) - i)
            )
            for i in range(len(widths))
        )
        self.depths = list(lead.depths)
        self.num_features = list(widths)

    @staticmethod
    def _run_stages(
        branch: InternImage,
        x: Tensor,
        gates: Optional[Sequence[Tensor]] = None,
        side_input: Optional[Callable[[int, Tuple[int, int]], Tensor]] = None,
    ) -> List[Tensor]:
        """Channels-last stage outputs of a branch from its stem output ``x``; with
        ``side_input``, stage ``i`` first adds ``gates[i] * side_input(i, (H_i, W_i))``."""
        outputs = []
        for i, level in enumerate(branch.levels):
            if side_input is not None:
                x = x + gates[i] * side_input(i, tuple(x.shape[1:3]))
            out, x = level(x)
            outputs.append(out)
        return outputs

    def _composite_input(self, first: List[Tensor], stage: int, size: Tuple[int, int]) -> Tensor:
        """The assisting branch's contribution to the lead branch's stage ``stage``
        (channels-last, ``size`` = that stage's input height and width)."""
        total = 0
        for j, project in enumerate(self.cb_linears[stage]):
            feature = project(first[stage + j].permute(0, 3, 1, 2))
            if tuple(feature.shape[2:]) != tuple(size):
                feature = F.interpolate(feature, size=tuple(size), mode='nearest')
            total = total + feature.permute(0, 2, 3, 1)
        return total

    def forward(self, x: Tensor) -> Tuple[Tuple[Tensor, ...], Tuple[Tensor, ...]]:
        """x: (N, 3, H, W) -> (assisting branch features, lead branch features), NCHW."""
        if x.dim() != 4:
            raise ValueError(f'x must be an NCHW image batch, got shape {tuple(x.shape)}')
        assisting, lead = self.cb_modules
        stem = assisting.patch_embed(x)
        first = self._run_stages(assisting, stem)
        gates = [getattr(lead, f'gamma{i}') for i in range(len(first))]
        second = self._run_stages(
            lead, stem, gates, lambda i, size: self._composite_input(first, i, size)
        )
        outs = [
            tuple(feats[i].permute(0, 3, 1, 2).contiguous() for i in indices)
            for feats, indices in zip((first, second), self.out_indices)
        ]
        if len(outs[0]) == len(outs[1]) + 1:
            outs[0] = outs[0][1:]
        return outs[0], outs[1]

    # ------------------------------------------------------------------ layer decay
    @property
    def num_layers(self) -> int:
        """Blocks of one branch, the ``num_layers`` of the official configs."""
        return sum(self.depths)

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """Layer id for layer-wise lr decay: the top id for every parameter.

        The official constructor numbers ``backbone.patch_embed.*`` / ``backbone.levels.*``
        names only; the composite backbone's ``backbone.cb_modules.*`` and
        ``backbone.cb_linears.*`` fall to its last id, so the official CB-InternImage runs
        train the whole backbone at the full lr. Kept here.

        Args:
            param_name (str): Parameter name in the model being optimised.
            prefix (str): Prefix of this backbone's parameter names. Defaults to ``''``.

        Returns:
            Tuple[int, int]: (``num_layers + 1``, ``num_layers + 2``).
        """
        return self.num_layers + 1, self.num_layers + 2


@MODELS.register_module()
class CBChannelMapper(ChannelMapper):
    """mmdet's ``ChannelMapper`` shared by the branches of a composite backbone.

    Training: maps each branch's features (a list of per-branch tuples out).
    Evaluation: maps only branch ``cb_idx`` (the lead branch).

    Args:
        cb_idx (int): Branch used at test time. Defaults to 1.
        **kwargs: ``ChannelMapper`` arguments.
    """

    def __init__(self, cb_idx: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.cb_idx = cb_idx

    def forward(self, inputs):
        """Per-branch feature tuples -> a list of mapped tuples (training) or the
        ``cb_idx`` branch's mapped tuple (evaluation); a plain tuple counts as one branch."""
        if not isinstance(inputs[0], (list, tuple)):
            inputs = [inputs]
        if self.training:
            return [super(CBChannelMapper, self).forward(x) for x in inputs]
        return super().forward(inputs[min(self.cb_idx, len(inputs) - 1)])


@MODELS.register_module()
class CBDINOHead(DINOHead):
    """mmdet's ``DINOHead`` with the official per-branch loss weights and names.

    Args:
        cb_first_weight (float): Weight of the assisting branch's losses. Defaults to 0.5.
        **kwargs: ``DINOHead`` arguments.
    """

    def __init__(self, *args, cb_first_weight: float = 0.5, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.cb_first_weight = cb_first_weight

    def weight_branch_losses(self, losses: Dict[str, object], branch: int) -> dict:
        """Renames and weights one branch's losses as the official ``upd_loss``:
        ``<name><branch>``, plus ``_w<weight>`` on weighted ``loss`` entries.

        Args:
            losses (dict): The head's losses on one branch.
            branch (int): 0 (assisting, weighted ``cb_first_weight``) or 1 (lead).

        Returns:
            dict: renamed, weighted losses.
        """
        weight = self.cb_first_weight if branch == 0 else 1.0
        renamed = {}
        for name, value in losses.items():
            new_name = f'{name}{branch}'
            if weight != 1 and 'loss' in name:
                new_name = f'{new_name}_w{weight:g}'
            if isinstance(value, (list, tuple)):
                renamed[new_name] = [item * weight for item in value]
            else:
                renamed[new_name] = value * weight
        return renamed


@MODELS.register_module()
class CBDINO(DINO):
    """mmdet's ``DINO`` on a composite backbone: the loss sums the head's losses on every
    branch (weighted by :class:`CBDINOHead`); prediction uses the neck's test-time branch."""

    def loss(self, batch_inputs: Tensor, batch_data_samples: list) -> dict:
        """Losses of every branch (see :meth:`CBDINOHead.weight_branch_losses`).

        Args:
            batch_inputs (Tensor): Images (N, 3, H, W).
            batch_data_samples (list[DetDataSample]): Their annotations.

        Returns:
            dict: the losses.
        """
        branch_feats = self.extract_feat(batch_inputs)
        if not isinstance(branch_feats, list):
            raise TypeError(
                'CBDINO needs a neck that returns one feature tuple per branch in '
                f'training (CBChannelMapper), got {type(branch_feats).__name__}'
            )
        if not isinstance(self.bbox_head, CBDINOHead):
            raise TypeError(f'CBDINO needs a CBDINOHead, got {type(self.bbox_head).__name__}')
        losses = {}
        for branch, feats in enumerate(branch_feats):
            head_inputs = self.forward_transformer(feats, batch_data_samples)
            branch_losses = self.bbox_head.loss(
                **head_inputs, batch_data_samples=batch_data_samples
            )
            losses.update(self.bbox_head.weight_branch_losses(branch_losses, branch))
        return losses
