"""Layer-wise lr decay of the official ImageNet fine-tunes (L/XL/H/G 22K -> 1K).

The official classification trainer numbers layers differently from its detection and
segmentation constructor: the last block keeps the full lr, each block below gets one more
factor of the rate, the stem goes with the first block, a stage's downsampling and closing
norm with the next stage's first block, and everything else (the last norm, H/G's extra
post-norms, the head) keeps the full lr. On top, DCNv3's sampling parameters (offsets,
attention weights, centre-feature-scale projection) get ``dcn_lr_mult``.
"""

from typing import Dict, List

from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn

from .layer_decay import add_to_group, check_paramwise_keys, find_backbone

__all__ = ['InternImageClsLayerDecayOptimizerConstructor', 'classification_lr_ratios']

_PARAMWISE_KEYS = ('layer_decay_rate', 'dcn_lr_mult')
# Names the official trainer slows down by its DCN lr multiplier.
_DCN_PARAM_MARKERS = ('offset', 'attention_weights', 'center_feature_scale_proj', 'alpha_beta')


def classification_lr_ratios(depths: List[int], rate: float) -> Dict[str, float]:
    """Backbone-relative name prefix -> lr ratio, in the order the prefixes are matched.

    Args:
        depths (list[int]): Blocks per stage.
        rate (float): Decay per block.

    Returns:
        dict: ``'levels.s.blocks.b.'`` -> ``rate ** k`` with ``k`` the block's distance from
        the last block, then ``'patch_embed'`` and each ``'levels.s.downsample'`` /
        ``'levels.s.norm'`` (``s`` < last stage) with the ratio of the block above them.
    """
    ratios = {}
    distance = 0
    for stage in reversed(range(len(depths))):
        for block in reversed(range(depths[stage])):
            ratios[f'levels.{stage}.blocks.{block}.'] = rate**distance
            distance += 1
    ratios['patch_embed'] = ratios['levels.0.blocks.0.']
    for stage in range(len(depths) - 1):
        above = ratios[f'levels.{stage + 1}.blocks.0.']
        ratios[f'levels.{stage}.downsample'] = above
        ratios[f'levels.{stage}.norm'] = above
    return ratios


# Not mmpretrain's LearningRateDecayOptimWrapperConstructor: the official classification
# trainer numbers blocks from the top down by name prefix, not by get_layer_depth ids.
@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class InternImageClsLayerDecayOptimizerConstructor(DefaultOptimWrapperConstructor):
    """Optimizer-wrapper constructor with the official classification fine-tune lr rule.

    A backbone parameter whose name (after the ``backbone.`` prefix) starts with a key of
    :func:`classification_lr_ratios` gets ``lr = base_lr * ratio``; every other parameter
    the base lr. Names containing ``offset``, ``attention_weights``,
    ``center_feature_scale_proj`` or ``alpha_beta`` are further scaled by ``dcn_lr_mult``.
    1-D parameters and biases get no weight decay. Frozen parameters are left out.

    ``paramwise_cfg`` keys:

    - ``layer_decay_rate`` (float): decay per block, in (0, 1]. Required.
    - ``dcn_lr_mult`` (float): lr factor of the DCNv3 sampling parameters. Defaults to 1.0.
    """

    def add_params(self, params: List[dict], module: nn.Module, **kwargs) -> None:
        """Append one parameter group per (lr ratio, decay kind) to ``params``.

        Args:
            params (list[dict]): Parameter groups, extended in place.
            module (nn.Module): The model being optimised.
            **kwargs: Unused; mmengine passes ``prefix`` / ``is_dcn_module`` here.
        """
        cfg = self.paramwise_cfg
        check_paramwise_keys(cfg, _PARAMWISE_KEYS)
        if 'layer_decay_rate' not in cfg:
            raise ValueError('paramwise_cfg needs layer_decay_rate (the official fine-tunes: 0.9)')
        rate = float(cfg['layer_decay_rate'])
        if not 0.0 < rate <= 1.0:
            raise ValueError(f'paramwise_cfg layer_decay_rate must be in (0, 1], got {rate}')
        dcn_lr_mult = float(cfg.get('dcn_lr_mult', 1.0))
        backbone, prefix = find_backbone(module, type(self).__name__)
        ratios = classification_lr_ratios(list(backbone.depths), rate)

        groups: Dict[tuple, dict] = {}
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            ratio = 1.0
            if name.startswith(prefix):
                local = name[len(prefix) :]
                ratio = next((r for key, r in ratios.items() if local.startswith(key)), 1.0)
            if any(marker in name for marker in _DCN_PARAM_MARKERS):
                ratio *= dcn_lr_mult
            no_decay = param.ndim == 1 or name.endswith('.bias')
            add_to_group(groups, (ratio, no_decay), name, param, self, ratio, no_decay)
        params.extend(groups.values())
        print_log(
            f'InternImage classification layer decay: rate {rate}, DCN lr x{dcn_lr_mult}',
            logger='current',
        )
