"""Official whole-model detection checkpoints (mmdet 2.x) -> our mmdet 3.x configs' keys.

Released layouts (``{'state_dict': sd}``, keys written from the official module code):

* Mask R-CNN / Cascade (Mask) R-CNN: mmdet 2.x ``FPN``, ``RPNHead`` (``rpn_conv``,
  ``rpn_cls``, ``rpn_reg``), ``Shared2FCBBoxHead`` / ``ConvFCBBoxHead`` (``shared_convs``,
  ``shared_fcs``, ``fc_cls``, ``fc_reg``), ``FCNMaskHead`` and ``CascadeRoIHead``'s
  per-stage ``roi_head.bbox_head.{i}`` / ``mask_head.{i}`` are the modules and names of
  mmdet 3.x: these keys pass unchanged.
* DINO (the official custom ``DINOHead`` + ``DinoTransformer``, mmcv 1.x transformer
  layers) keeps the transformer under ``bbox_head.transformer``; mmdet 3.x's ``DINO`` holds
  it on the detector, with 3.x layer names (see :data:`_DINO_RENAMES`). InternImage-G's
  ``EfficientFFN`` (``fc1_{s}``, ``fc2_{s}``, ``fc2_bias``: the FFN's two linears split in
  column slices) is concatenated back into mmcv's ``FFN`` (``layers.0.0``, ``layers.1``).
* CB-InternImage: backbone keys are ours (``backbone.cb_modules.*``, ``backbone.cb_linears.*``);
  the official neck is a one-element list (mmdet 2.x builds an ``nn.Sequential``), so its keys
  carry a ``neck.0.`` that mmdet 3.x's single neck does not.

Only torch here: the checkpoint layer imports no model code.
"""

import re
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch

__all__ = ['convert_detection_checkpoint', 'detect_detection_layout']

# (official pattern, mmdet 3.x replacement), applied to ``bbox_head.transformer.`` /
# ``bbox_head.label_embedding`` keys in order; the first match wins.
_DINO_RENAMES: List[Tuple[str, str]] = [
    (r'^bbox_head\.transformer\.level_embeds$', 'level_embed'),
    (r'^bbox_head\.transformer\.enc_output\.', 'memory_trans_fc.'),
    (r'^bbox_head\.transformer\.enc_output_norm\.', 'memory_trans_norm.'),
    (r'^bbox_head\.transformer\.query_embed\.', 'query_embedding.'),
    (r'^bbox_head\.label_embedding\.', 'dn_query_generator.label_embedding.'),
    # mmcv 1.x BaseTransformerLayer: attentions / ffns / norms lists.
    (
        r'^bbox_head\.transformer\.encoder\.layers\.(\d+)\.attentions\.0\.',
        r'encoder.layers.\1.self_attn.',
    ),
    (
        r'^bbox_head\.transformer\.decoder\.layers\.(\d+)\.attentions\.0\.',
        r'decoder.layers.\1.self_attn.',
    ),
    (
        r'^bbox_head\.transformer\.decoder\.layers\.(\d+)\.attentions\.1\.',
        r'decoder.layers.\1.cross_attn.',
    ),
    (r'^bbox_head\.transformer\.(en|de)coder\.layers\.(\d+)\.ffns\.0\.', r'\1coder.layers.\2.ffn.'),
    (r'^bbox_head\.transformer\.(en|de)coder\.layers\.(\d+)\.norms\.', r'\1coder.layers.\2.norms.'),
    # build_MLP: Sequential(Linear, ReLU, Linear) -> mmdet 3.x MLP.layers.{0,1}.
    (r'^bbox_head\.transformer\.decoder\.ref_point_head\.0\.', 'decoder.ref_point_head.layers.0.'),
    (r'^bbox_head\.transformer\.decoder\.ref_point_head\.2\.', 'decoder.ref_point_head.layers.1.'),
    (r'^bbox_head\.transformer\.decoder\.norm\.', 'decoder.norm.'),
]
_EFFICIENT_FFN = re.compile(r'^(.*\.ffn\.)(fc1_(\d+)\.(weight|bias)|fc2_(\d+)\.weight|fc2_bias)$')


def detect_detection_layout(state_dict: Dict[str, torch.Tensor]) -> str:
    """``'dino'`` (official custom DINO head) or ``'rcnn'`` (Mask / Cascade R-CNN).

    Args:
        state_dict (dict): Unwrapped official state dict.

    Returns:
        str: the layout name.
    """
    if any(k.startswith('bbox_head.transformer.') for k in state_dict):
        return 'dino'
    if any(k.startswith(('rpn_head.', 'roi_head.')) for k in state_dict):
        return 'rcnn'
    raise KeyError(
        'not an official InternImage detection checkpoint: no bbox_head.transformer.* '
        '(DINO) and no rpn_head.* / roi_head.* (Mask / Cascade R-CNN) keys; first keys: '
        + ', '.join(list(state_dict)[:5])
    )


def _merge_efficient_ffn(converted: 'OrderedDict[str, torch.Tensor]') -> None:
    """EfficientFFN slices -> one FFN (in place): fc1 rows and fc2 columns concatenated in
    slice order, ``fc2_bias`` as the second linear's bias."""
    slices: Dict[str, Dict[str, Dict[int, torch.Tensor]]] = {}
    for key in [k for k in converted if _EFFICIENT_FFN.match(k)]:
        match = _EFFICIENT_FFN.match(key)
        prefix, part = match.group(1), match.group(2)
        entry = slices.setdefault(prefix, {'w1': {}, 'b1': {}, 'w2': {}, 'b2': {}})
        value = converted.pop(key)
        if part == 'fc2_bias':
            entry['b2'][0] = value
        elif part.startswith('fc1_'):
            entry['w1' if match.group(4) == 'weight' else 'b1'][int(match.group(3))] = value
        else:
            entry['w2'][int(match.group(5))] = value
    for prefix, entry in slices.items():
        order = sorted(entry['w1'])
        if sorted(entry['b1']) != order or sorted(entry['w2']) != order or not entry['b2']:
            raise KeyError(f'{prefix}: incomplete EfficientFFN slices in the checkpoint')
        converted[prefix + 'layers.0.0.weight'] = torch.cat([entry['w1'][s] for s in order], 0)
        converted[prefix + 'layers.0.0.bias'] = torch.cat([entry['b1'][s] for s in order], 0)
        converted[prefix + 'layers.1.weight'] = torch.cat([entry['w2'][s] for s in order], 1)
        converted[prefix + 'layers.1.bias'] = entry['b2'][0]


def convert_detection_checkpoint(
    state_dict: Dict[str, torch.Tensor],
) -> 'OrderedDict[str, torch.Tensor]':
    """Maps an official (mmdet 2.x) detection state dict to our mmdet 3.x configs' keys.

    Args:
        state_dict (dict): Unwrapped state dict (``extract_state_dict``) of a released
            Mask R-CNN, Cascade Mask R-CNN, DINO or CB-DINO file.

    Returns:
        OrderedDict: the converted state dict. A DINO transformer key that no rule maps
        raises ``KeyError`` naming it.
    """
    layout = detect_detection_layout(state_dict)
    converted, unknown = OrderedDict(), []
    for key, value in state_dict.items():
        if key.startswith('neck.0.'):  # a one-element neck list (CB-DINO)
            key = 'neck.' + key[len('neck.0.') :]
        if layout == 'dino' and key.startswith(('bbox_head.transformer.', 'bbox_head.label_')):
            for pattern, replacement in _DINO_RENAMES:
                new_key, count = re.subn(pattern, replacement, key)
                if count:
                    key = new_key
                    break
            else:
                unknown.append(key)
                continue
        converted[key] = value
    if unknown:
        raise KeyError('official DINO keys with no mmdet 3.x counterpart: ' + ', '.join(unknown))
    _merge_efficient_ffn(converted)
    return converted
