"""Layer-wise learning-rate decay for InternImage, as in the official downstream recipes."""

from collections import OrderedDict
from typing import Any, Dict, List, Tuple

from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn

__all__ = [
    'InternImageLayerDecayOptimizerConstructor',
    'add_to_group',
    'check_paramwise_keys',
    'find_backbone',
    'is_no_decay_param',
]

# ``paramwise_cfg`` keys of the official constructor; ``num_layers`` / ``depths`` are checked
# against the backbone, which supplies them.
_PARAMWISE_KEYS = (
    'layer_decay_rate',
    'num_layers',
    'depths',
    'offset_lr_scale',
    'backbone_small_lr',
    'dino_head',
)
# Deformable-attention parameters (DINO, Deformable DETR): no weight decay, and the lr rules
# ``offset_lr_scale`` / ``dino_head``. InternImage's own DCNv3 ``offset`` is not among them.
_OFFSET_PARAM_MARKERS = ('sampling_offsets', 'reference_points')
# DCNv4's joint offset/mask projection, which the official DCNv4 constructor also scales by
# ``offset_lr_scale``; its depth-wise conv ``offset_mask_dw`` keeps the layer's lr.
_DCNV4_OFFSET_MARKER, _DCNV4_OFFSET_DW_MARKER = 'offset_mask', 'offset_mask_dw'
# Query / level embeddings the official constructors put at layer id 0 (the stem's lr).
# ``level_embeds`` is the official DINO's name; mmdet 3.x's DINO calls the same tensor
# ``level_embed``. The ``decode_head.*`` ones are Mask2Former's, unchanged in mmseg 1.x.
_EMBEDDING_PREFIXES = (
    'level_embed',
    'decode_head.mask_embed',
    'decode_head.cls_embed',
    'decode_head.level_embed',
    'decode_head.query_embed',
    'decode_head.query_feat',
)


def is_no_decay_param(name: str, param: nn.Parameter) -> bool:
    """The official rule: 1-D parameters (norm weights, layer-scale gammas), biases, names
    containing ``norm``, ``relative_position`` or ``sampling_offsets`` get no weight decay."""
    return (
        param.ndim == 1
        or name.endswith('.bias')
        or 'norm' in name
        or 'relative_position' in name
        or 'sampling_offsets' in name
    )


def _is_embedding_at_layer_0(name: str) -> bool:
    return 'level_embeds' in name or name.startswith(_EMBEDDING_PREFIXES)


def _is_offset_param(name: str) -> bool:
    return any(marker in name for marker in _OFFSET_PARAM_MARKERS)


def _is_dcnv4_offset_param(name: str) -> bool:
    return _DCNV4_OFFSET_MARKER in name and _DCNV4_OFFSET_DW_MARKER not in name


def find_backbone(module: nn.Module, constructor: str) -> Tuple[nn.Module, str]:
    """The InternImage backbone being optimised and the prefix of its parameter names.

    ``model.backbone`` (``'backbone.'``) when it has ``get_layer_depth``, else the model itself
    (``''``), the interface of mmpretrain's ``LearningRateDecayOptimWrapperConstructor``. The
    backbone comes first: mmpretrain's classifiers also have a ``get_layer_depth``, which
    only forwards to it.
    """
    backbone = getattr(module, 'backbone', None)
    if hasattr(backbone, 'get_layer_depth'):
        return backbone, 'backbone.'
    if hasattr(module, 'get_layer_depth'):
        return module, ''
    raise ValueError(
        f'{constructor} needs a backbone with get_layer_depth (InternImage); '
        f'{type(module).__name__} has none'
    )


def check_paramwise_keys(cfg: dict, allowed: Tuple[str, ...]) -> None:
    """Refuse ``paramwise_cfg`` keys a constructor does not read (a typo would be ignored)."""
    unknown = sorted(set(cfg) - set(allowed))
    if unknown:
        raise ValueError(f'paramwise_cfg: unknown keys {unknown}; expected {", ".join(allowed)}')


def add_to_group(
    groups: Dict[Any, dict],
    key: Any,
    name: str,
    param: nn.Parameter,
    constructor: DefaultOptimWrapperConstructor,
    scale: float,
    no_decay: bool,
    **extra: Any,
) -> None:
    """Put ``param`` in the group ``key``, created on first use with ``lr = base_lr * scale``,
    no weight decay if ``no_decay`` and the ``extra`` fields."""
    if key not in groups:
        group = dict(params=[], param_names=[], lr=constructor.base_lr * scale, lr_scale=scale)
        group.update(extra)
        if constructor.base_wd is not None:
            group['weight_decay'] = 0.0 if no_decay else constructor.base_wd
        groups[key] = group
    groups[key]['params'].append(param)
    groups[key]['param_names'].append(name)


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


# Not mmpretrain's LearningRateDecayOptimWrapperConstructor (same rate ** (max_id - id - 1)):
# its no-decay rule is mmengine's by module type, not the official one by name, and it has
# no offset_lr_scale / dino_head / backbone_small_lr.
@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class InternImageLayerDecayOptimizerConstructor(DefaultOptimWrapperConstructor):
    """Optimizer-wrapper constructor with layer-wise lr decay for InternImage models.

    The backbone numbers the parameters (``get_layer_depth(param_name, prefix)``, the
    interface of mmpretrain's ``LearningRateDecayOptimWrapperConstructor``; the rule is
    :func:`internimage.models.internimage.layer_id_of_param`, ``docs/layer_decay.md``),
    as the official InternImage constructor does: stem 0, blocks consecutively, each
    stage's closing norm and downsampling with the next stage, everything outside the
    backbone ``num_layers + 1``, except the DINO / Mask2Former query and level embeddings,
    which get id 0. A parameter with id ``i`` gets
    ``lr = base_lr * layer_decay_rate ** (num_layers + 1 - i)``. Norms, biases, 1-D
    parameters and ``relative_position`` / ``sampling_offsets`` parameters get no weight
    decay. Frozen parameters are left out.

    ``paramwise_cfg`` keys (those of the official constructor):

    - ``layer_decay_rate`` (float): decay per layer. Defaults to 1.0.
    - ``num_layers`` (int), ``depths`` (list[int]): optional, for configs written for
      the official constructor; they must equal the backbone's (``sum(depths)`` and
      its blocks per stage), else a ValueError names them.
    - ``offset_lr_scale`` (float): lr factor of ``sampling_offsets`` / ``reference_points``
      parameters (deformable-attention heads) and, as the official DCNv4 constructor, of
      DCNv4's ``offset_mask`` projection (not ``offset_mask_dw``). Defaults to 1.0.
    - ``dino_head`` (bool): those parameters at the top id get 0.1x instead of
      ``offset_lr_scale``. Defaults to False.
    - ``backbone_small_lr`` (bool): every group whose decayed scale is below 1 gets a
      further 0.1x. Defaults to False.

    The backbone is ``model.backbone`` when it has ``get_layer_depth``, else the model
    itself (:func:`find_backbone`).
    """

    def add_params(self, params: List[dict], module: nn.Module, **kwargs) -> None:
        """Append one parameter group per (layer id, decay kind, lr rule) to ``params``.

        Args:
            params (list[dict]): Parameter groups, extended in place.
            module (nn.Module): The model being optimised.
            **kwargs: Unused; mmengine passes ``prefix`` / ``is_dcn_module`` here.
        """
        cfg = self.paramwise_cfg
        check_paramwise_keys(cfg, _PARAMWISE_KEYS)
        backbone, prefix = find_backbone(module, 'layer decay')

        def layer_depth(name: str) -> Tuple[int, int]:
            return backbone.get_layer_depth(name, prefix)

        decay_rate = float(cfg.get('layer_decay_rate', 1.0))
        offset_lr_scale = float(cfg.get('offset_lr_scale', 1.0))
        backbone_small_lr = _flag(cfg, 'backbone_small_lr')
        dino_head = _flag(cfg, 'dino_head')

        num_layers = getattr(backbone, 'num_layers', None)
        if not isinstance(num_layers, int):
            raise ValueError(
                f'layer decay needs the backbone to give num_layers (InternImage does); '
                f'{type(backbone).__name__} has {num_layers!r}'
            )
        top_id = num_layers + 1
        _check_against_backbone(cfg, backbone, num_layers)

        groups = OrderedDict()
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            layer_id = 0 if _is_embedding_at_layer_0(name) else layer_depth(name)[0]
            no_decay = is_no_decay_param(name, param)
            group_name = f'layer_{layer_id}_{"no_decay" if no_decay else "decay"}'
            scale = decay_rate ** (top_id - layer_id)
            # As the official constructors: a head's offset parameters get 0.1x with
            # ``dino_head``, else ``offset_lr_scale`` (as DCNv4's offset_mask);
            # ``backbone_small_lr`` gives every decayed (scale < 1) group a further 0.1x.
            if scale < 1 and backbone_small_lr:
                scale *= 0.1
            if _is_offset_param(name) and dino_head and layer_id == top_id:
                group_name += '_0.1x'
                scale *= 0.1
            elif _is_offset_param(name) or _is_dcnv4_offset_param(name):
                group_name += '_offset_lr_scale'
                scale *= offset_lr_scale
            add_to_group(
                groups,
                group_name,
                name,
                param,
                self,
                scale,
                no_decay,
                layer_id=layer_id,
                group_name=group_name,
            )
        print_log(
            f'InternImage layer decay: rate {decay_rate}, {num_layers} layers, '
            f'{len(groups)} param groups',
            logger='current',
        )
        params.extend(groups.values())


def _flag(cfg: dict, key: str) -> bool:
    """A boolean ``paramwise_cfg`` switch; anything but True/False is an error."""
    value = cfg.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f'paramwise_cfg {key} must be True or False, got {value!r}')
    return value
