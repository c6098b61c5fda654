"""Official whole-model segmentation checkpoints in the key layout of our mmseg 1.x configs.

The official release (OpenGVLab/InternImage ``segmentation/``, mmseg 0.x / mmcv 1.x) saves
``{'state_dict': sd, 'meta': ...}`` with the backbone under ``backbone.`` (our backbone
keeps the official names) and the heads under ``decode_head.`` / ``auxiliary_head.``:

* UperNet (``upernet_internimage_*``): mmseg 0.x ``UPerHead`` (``psp_modules``,
  ``bottleneck``, ``lateral_convs``, ``fpn_convs``, ``fpn_bottleneck``, ``conv_seg``) and
  the ``FCNHead`` auxiliary head (``convs``, ``conv_seg``). mmseg 1.x's heads use the
  same names: nothing is renamed.
* SegFormer head (``segformer_internimage_*``): ``convs.{i}.conv`` / ``.bn``,
  ``fusion_conv``, ``conv_seg``: the same names in mmseg 1.x.
* Mask2Former (``mask2former_internimage_*``): the official ``Mask2FormerHead`` of
  ``mmseg_custom`` built its pixel decoder and transformer decoder from mmcv 1.x's generic
  transformer layers, which keep their attention modules in a list ``attentions`` and
  their feed-forward networks in ``ffns``, in the config's ``operation_order``. mmdet 3.x's
  ``Mask2FormerTransformerEncoder`` / ``Mask2FormerTransformerDecoder`` (inside mmseg
  1.x's ``Mask2FormerHead``) name them by role. With the official orders (encoder:
  ``self_attn, norm, ffn, norm``; decoder: ``cross_attn, norm, self_attn, norm, ffn,
  norm``):

  ============================================================  ============================
  official                                                      mmseg 1.x / mmdet 3.x
  ============================================================  ============================
  ``pixel_decoder.encoder.layers.{i}.attentions.0.``            ``...layers.{i}.self_attn.``
  ``pixel_decoder.encoder.layers.{i}.ffns.0.``                  ``...layers.{i}.ffn.``
  ``transformer_decoder.layers.{i}.attentions.0.``              ``...layers.{i}.cross_attn.``
  ``transformer_decoder.layers.{i}.attentions.1.``              ``...layers.{i}.self_attn.``
  ``transformer_decoder.layers.{i}.ffns.0.``                    ``...layers.{i}.ffn.``
  ============================================================  ============================

  ``norms.{k}`` keep their index (both apply them in the same order: after the first
  attention, after the second, after the FFN). Everything else (``input_convs``,
  ``level_encoding``, ``lateral_convs``, ``output_convs``, ``mask_feature``,
  ``transformer_decoder.post_norm``, ``query_embed``, ``query_feat``, ``level_embed``,
  ``cls_embed``, ``mask_embed``) has the same name.

The official Cityscapes / Mapillary UperNet and SegFormer configs keep ADE20K's 150
outputs in ``conv_seg`` while their labels use only the 19 Cityscapes ids; our configs
predict 19 classes, so the conversion can keep the first ``num_classes`` rows of those
classifiers (``num_classes``).
"""

import re
from collections import OrderedDict
from typing import Dict, Optional

import torch

__all__ = ['convert_segmentation_checkpoint', 'MASK2FORMER_RENAMES']

# (official pattern, replacement) of the Mask2Former head, applied to keys under
# ``decode_head.``; see the module docstring.
MASK2FORMER_RENAMES = (
    (
        r'^pixel_decoder\.encoder\.layers\.(\d+)\.attentions\.0\.',
        r'pixel_decoder.encoder.layers.\1.self_attn.',
    ),
    (r'^pixel_decoder\.encoder\.layers\.(\d+)\.ffns\.0\.', r'pixel_decoder.encoder.layers.\1.ffn.'),
    (
        r'^transformer_decoder\.layers\.(\d+)\.attentions\.0\.',
        r'transformer_decoder.layers.\1.cross_attn.',
    ),
    (
        r'^transformer_decoder\.layers\.(\d+)\.attentions\.1\.',
        r'transformer_decoder.layers.\1.self_attn.',
    ),
    (r'^transformer_decoder\.layers\.(\d+)\.ffns\.0\.', r'transformer_decoder.layers.\1.ffn.'),
)
_MODEL_PARTS = ('backbone.', 'decode_head.', 'auxiliary_head.')
_CLASSIFIERS = ('decode_head.conv_seg.', 'auxiliary_head.conv_seg.')


def _rename_head_key(key: str) -> str:
    """A ``decode_head.`` key in mmseg 1.x names (Mask2Former renames; others unchanged)."""
    head_key = key[len('decode_head.') :]
    for pattern, replacement in MASK2FORMER_RENAMES:
        renamed, count = re.subn(pattern, replacement, head_key)
        if count:
            return 'decode_head.' + renamed
    return key


def convert_segmentation_checkpoint(
    state_dict: Dict[str, torch.Tensor], num_classes: Optional[int] = None
) -> 'OrderedDict[str, torch.Tensor]':
    """Rename an official mmseg 0.x InternImage segmentation state dict for our configs.

    Args:
        state_dict (dict): the official model's state dict (wrappers and ``module.``
            prefixes already removed, e.g. by :func:`internimage.checkpoint.extract_state_dict`).
        num_classes (int, optional): keep the first ``num_classes`` outputs of the
            UperNet / SegFormer classifiers (``conv_seg``), for the Cityscapes / Mapillary
            files whose heads have ADE20K's 150 outputs. None keeps them all.

    Returns:
        OrderedDict: the state dict in the key layout of ``configs/segmentation/``.

    Raises:
        ValueError: a key outside ``backbone.`` / ``decode_head.`` / ``auxiliary_head.``
            (not a segmentation model), or ``num_classes`` above a classifier's outputs
            or given for a file without ``conv_seg``.
    """
    strays = [key for key in state_dict if not key.startswith(_MODEL_PARTS)]
    if strays:
        raise ValueError(
            f'not an mmseg segmentation state dict: keys {strays[:5]} are outside '
            f'{list(_MODEL_PARTS)}'
        )
    converted: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith('decode_head.'):
            key = _rename_head_key(key)
        converted[key] = value
    if num_classes is not None:
        classifiers = [key for key in converted if key.startswith(_CLASSIFIERS)]
        if not classifiers:
            raise ValueError(
                f'num_classes={num_classes}: the checkpoint has no conv_seg classifier to cut '
                '(only UperNet / SegFormer files have one)'
            )
        for key in classifiers:
            outputs = converted[key].shape[0]
            if not 0 < num_classes <= outputs:
                raise ValueError(
                    f'num_classes={num_classes}: {key} has {outputs} outputs; expected 1..{outputs}'
                )
            converted[key] = converted[key][:num_classes].clone()
    return converted
