"""Layer-wise learning-rate decay for InternImage, as in the official downstream recipes."""

from collections import OrderedDict
from typing import Callable, List, Tuple

from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn

__all__ = ['InternImageLayerDecayOptimizerConstructor', 'is_no_decay_param']

# ``paramwise_cfg`` keys; only ``layer_decay_rate`` is needed, the other two are checked.
_PARAMWISE_KEYS = ('layer_decay_rate', 'num_layers', 'depths')


def is_no_decay_param(name: str, param: nn.Parameter) -> bool:
    """Norms, biases, layer-scale gammas and other 1-D parameters get no weight decay."""
    return (
        param.ndim == 1
        or name.endswith('.bias')
        or 'norm' in name
        or name.rsplit('.', 1)[-1].startswith('gamma')
    )


def _layer_depth_of(module: nn.Module) -> Tuple[Callable[[str], Tuple[int, int]], nn.Module]:
    """``param name -> (layer id, number of ids)`` from the backbone, and the backbone.

    As mmpretrain's ``LearningRateDecayOptimWrapperConstructor``: the model's own
    ``get_layer_depth`` when it is the backbone, else ``model.backbone``'s with the
    ``backbone.`` prefix.
    """
    if hasattr(module, 'get_layer_depth'):
        return module.get_layer_depth, module
    backbone = getattr(module, 'backbone', None)
    if not hasattr(backbone, 'get_layer_depth'):
        raise ValueError(
            f'layer decay needs a backbone with get_layer_depth (InternImage); '
            f'{type(module).__name__} has none'
        )
    return (lambda name: backbone.get_layer_depth(name, 'backbone.')), backbone


def _check_against_backbone(cfg: dict, backbone: nn.Module, num_layers: int) -> None:
    """``num_layers`` / ``depths`` in ``paramwise_cfg`` are optional; given, they must be
    the backbone's."""
    actual = dict(num_layers=num_layers, depths=list(getattr(backbone, 'depths', [])))
    given = dict(num_layers=int, depths=list)
    wrong = [key for key, kind in given.items() if key in cfg and kind(cfg[key]) != actual[key]]
    if wrong:
        raise ValueError(
            'paramwise_cfg '
            + ', '.join(f'{key}={cfg[key]!r}' for key in wrong)
            + " does not match the backbone's "
            + ', '.join(f'{key}={actual[key]!r}' for key in wrong)
            + '; leave it out, the layers are read from the backbone'
        )


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class InternImageLayerDecayOptimizerConstructor(DefaultOptimWrapperConstructor):
    """Optimizer-wrapper constructor with layer-wise lr decay for InternImage models.

    The backbone numbers the parameters (``get_layer_depth(param_name, prefix)``, the
    interface of mmpretrain's ``LearningRateDecayOptimWrapperConstructor``; the rule is
    :func:`internimage.models.internimage.layer_id_of_param`, ``docs/layer_decay.md``):
    stem 0, blocks consecutively, each stage's closing norm and downsampling with the
    next stage, everything outside the backbone ``num_layers + 1``. A parameter with id
    ``i`` gets ``lr = base_lr * layer_decay_rate ** (num_layers + 1 - i)``. Norms, biases,
    gammas and 1-D parameters get no weight decay. Frozen parameters are left out.

    ``paramwise_cfg`` keys:

    - ``layer_decay_rate`` (float): decay per layer. Defaults to 1.0.
    - ``num_layers`` (int), ``depths`` (list[int]): optional, for configs written for
      the official constructor; they must equal the backbone's (``sum(depths)`` and
      its blocks per stage), else a ValueError names them.

    The backbone is the model itself when it has ``get_layer_depth``, else
    ``model.backbone``.
    """

    def add_params(self, params: List[dict], module: nn.Module, **kwargs) -> None:
        cfg = self.paramwise_cfg
        unknown = sorted(set(cfg) - set(_PARAMWISE_KEYS))
        if unknown:
            raise ValueError(
                f'paramwise_cfg: unknown keys {unknown}; expected {", ".join(_PARAMWISE_KEYS)}'
            )
        layer_depth, backbone = _layer_depth_of(module)
        decay_rate = float(cfg.get('layer_decay_rate', 1.0))

        # Any parameter name gives the number of ids; ask with the first one.
        first_name = next((name for name, _ in module.named_parameters()), '')
        num_layers = layer_depth(first_name)[1] - 2
        _check_against_backbone(cfg, backbone, num_layers)

        groups = OrderedDict()
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            layer_id, _ = layer_depth(name)
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
