"""Layer-wise learning-rate decay for InternImage, as in the official downstream recipes."""

from collections import OrderedDict
from typing import List

from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn

from ..models.internimage import InternImage, layer_id_of_param

__all__ = ['InternImageLayerDecayOptimizerConstructor', 'is_no_decay_param']


def is_no_decay_param(name: str, param: nn.Parameter) -> bool:
    """Norms, biases, layer-scale gammas and other 1-D parameters get no weight decay."""
    return (
        param.ndim == 1
        or name.endswith('.bias')
        or 'norm' in name
        or name.rsplit('.', 1)[-1].startswith('gamma')
    )


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class InternImageLayerDecayOptimizerConstructor(DefaultOptimWrapperConstructor):
    """Optimizer-wrapper constructor with layer-wise lr decay for InternImage models.

    Parameter ids follow :func:`internimage.models.internimage.layer_id_of_param` (stem 0,
    blocks consecutively, each stage's closing norm and downsampling with the next
    stage, everything outside the backbone ``num_layers + 1``); a parameter with id ``i``
    gets ``lr = base_lr * layer_decay_rate ** (num_layers + 1 - i)``. Norms, biases,
    gammas and 1-D parameters get no weight decay. Frozen parameters are left out.

    ``paramwise_cfg`` keys:

    - ``num_layers`` (int): number of backbone blocks (``sum(depths)``, e.g. 30 for T).
    - ``layer_decay_rate`` (float): decay per layer. Defaults to 1.0.
    - ``depths`` (list[int]): blocks per stage; defaults to the backbone's.

    The backbone is ``model.backbone`` (or the model itself when it is an InternImage).
    """

    def add_params(self, params: List[dict], module: nn.Module, **kwargs) -> None:
        cfg = self.paramwise_cfg
        unknown = sorted(set(cfg) - {'num_layers', 'layer_decay_rate', 'depths'})
        if unknown:
            raise ValueError(
                f'paramwise_cfg: unknown keys {unknown}; expected num_layers, '
                'layer_decay_rate, depths'
            )
        if isinstance(module, InternImage):
            backbone, prefix = module, ''
        else:
            backbone, prefix = getattr(module, 'backbone', None), 'backbone.'
        post_norm_ids = backbone.post_norm_block_ids if isinstance(backbone, InternImage) else {}
        depths = cfg.get('depths', getattr(backbone, 'depths', None))
        if depths is None:
            raise ValueError(
                'paramwise_cfg needs depths (the model has no InternImage backbone '
                'to read them from)'
            )
        if 'num_layers' not in cfg:
            raise ValueError('paramwise_cfg needs num_layers (sum of depths, e.g. 30 for T)')
        num_layers = int(cfg['num_layers'])
        if num_layers != sum(depths):
            raise ValueError(
                f'paramwise_cfg num_layers ({num_layers}) must equal sum(depths) '
                f'({sum(depths)} for depths={list(depths)})'
            )
        decay_rate = float(cfg.get('layer_decay_rate', 1.0))

        groups = OrderedDict()
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            layer_id = layer_id_of_param(name, depths, prefix, post_norm_ids)
            no_decay = is_no_decay_param(name, param)
            group_name = f'layer_{layer_id}_{"no_decay" if no_decay else "decay"}'
            if group_name not in groups:
                scale = decay_rate ** (num_layers + 1 - layer_id)
                groups[group_name] = dict(
                    params=[],
                    param_names=[],
                    lr=self.base_lr * scale,
                    lr_scale=scale,
                    layer_id=layer_id,
                    group_name=group_name,
                )
                if self.base_wd is not None:
                    groups[group_name]['weight_decay'] = 0.0 if no_decay else self.base_wd
            groups[group_name]['params'].append(param)
            groups[group_name]['param_names'].append(name)
        print_log(
            f'InternImage layer decay: rate {decay_rate}, {num_layers} layers, '
            f'{len(groups)} param groups',
            logger='current',
        )
        params.extend(groups.values())
