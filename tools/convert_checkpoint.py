"""Convert an official InternImage checkpoint (classifier, detector or segmenter) for OpenMMLab 2.0.

    python tools/convert_checkpoint.py SRC DST [--task TASK] [--num-classes N]
        [--config CONFIG] [--allow-partial] [--trust-checkpoint]

What SRC holds is recognised by its keys, or given with ``--task``:

* ``classification``: a released classifier (``{'model': state_dict}``, e.g.
  internimage_t_1k_224.pth); DST loads into the ``ImageClassifier`` of
  ``configs/classification/internimage-*.py``. Backbone keys move under ``backbone.``; the
  head under ``head.`` (its final Linear ``head.*`` becomes ``head.fc.*``).
* ``detection``: a released mmdet 2.x detector (Mask R-CNN, Cascade, the official DINO /
  CB-DINO heads), converted for the mmdet 3.x configs of ``configs/detection``
  (``internimage.checkpoint.detection``); recognised by its head keys.
* ``segmentation``: a released mmseg 0.x segmenter (UperNet, SegFormer, the official
  Mask2Former head), converted for ``configs/segmentation``
  (``internimage.checkpoint.segmentation``); recognised by ``decode_head.`` keys.
  ``--num-classes 19`` keeps the Cityscapes outputs of the files whose heads have 150.

A backbone alone needs no conversion: ``init_cfg=dict(type='Pretrained', checkpoint=...)``
reads any of these files directly.

SRC may be a local file or a URL. It is read with ``weights_only=True``; a file that also
pickles other objects (e.g. a config) is refused with the type's name unless
``--trust-checkpoint`` allows a full unpickle. A converted classifier must be whole
(backbone and ``head.fc.*``); with ``--config`` the result must fit that config's model
exactly (no missing, unexpected or reshaped key). Otherwise the conversion is refused, naming
SRC and the keys, unless ``--allow-partial`` (docs/checkpoints.md).
"""

import argparse
import os
import os.path as osp
import sys
from typing import Optional

import torch

# Run from a checkout without installing: make the repository importable.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from internimage.checkpoint import (
    CheckpointMismatchError,
    add_allow_partial_argument,
    check_state_dict_fits,
    convert_classification_checkpoint,
    extract_state_dict,
    load_checkpoint_file,
)
from internimage.checkpoint.detection import convert_detection_checkpoint
from internimage.checkpoint.segmentation import convert_segmentation_checkpoint

TASKS = ('classification', 'detection', 'segmentation')
# Keys only a released whole detector / segmenter has.
_DETECTION_PREFIXES = ('rpn_head.', 'roi_head.', 'bbox_head.')
_SEGMENTATION_PREFIXES = ('decode_head.',)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='official checkpoint (.pth), a file or a URL')
    parser.add_argument('dst', help='output path of the converted checkpoint')
    parser.add_argument(
        '--task',
        choices=TASKS,
        help='what SRC holds (default: recognised by its keys)',
    )
    parser.add_argument(
        '--num-classes',
        type=int,
        help='segmentation: keep the first N outputs of the conv_seg classifiers',
    )
    parser.add_argument(
        '--trust-checkpoint',
        action='store_true',
        help='read SRC with a full unpickle (it can run code from the file): only for a '
        'trusted file that pickles more than tensors',
    )
    parser.add_argument('--config', help='config whose model DST must fit exactly (checked)')
    add_allow_partial_argument(parser)
    args = parser.parse_args(argv)
    if args.num_classes is not None and args.task not in (None, 'segmentation'):
        parser.error('--num-classes applies to segmentation checkpoints only')
    return args


def recognise_task(state_dict: dict) -> str:
    """The task of a released file, from its keys."""
    if any(key.startswith(_DETECTION_PREFIXES) for key in state_dict):
        return 'detection'
    if any(key.startswith(_SEGMENTATION_PREFIXES) for key in state_dict):
        return 'segmentation'
    return 'classification'


def convert(checkpoint: dict, task: str, num_classes: Optional[int] = None) -> dict:
    """The state dict of ``checkpoint`` in this project's layout for ``task``."""
    if task == 'detection':
        return convert_detection_checkpoint(extract_state_dict(checkpoint))
    if task == 'segmentation':
        return convert_segmentation_checkpoint(
            extract_state_dict(checkpoint), num_classes=num_classes
        )
    return convert_classification_checkpoint(checkpoint)


def check_fits_config(state_dict: dict, src: str, config: str) -> None:
    """Refuse ``state_dict`` unless it fills the model of ``config`` exactly (the model is
    built without loading pre-trained weights, in the config's default scope)."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    cfg = Config.fromfile(config)
    if cfg.model.get('backbone') is not None:
        cfg.model.backbone.init_cfg = None
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    check_state_dict_fits(MODELS.build(cfg.model), state_dict, src)


def check_whole_classifier(state_dict: dict, src: str) -> None:
    """Refuse a converted classifier with no backbone or no final Linear (``head.fc.*``)."""
    missing = [
        key
        for key in ('backbone.patch_embed.conv1.weight', 'head.fc.weight', 'head.fc.bias')
        if key not in state_dict
    ]
    if missing:
        raise CheckpointMismatchError(src, missing, [], [])


def main(argv=None) -> None:
    args = parse_args(argv)
    checkpoint = load_checkpoint_file(args.src, trust=args.trust_checkpoint)
    task = args.task or recognise_task(extract_state_dict(checkpoint))
    if args.num_classes is not None and task != 'segmentation':
        raise ValueError(f'--num-classes applies to segmentation checkpoints; {args.src} is {task}')
    try:
        state_dict = convert(checkpoint, task, args.num_classes)
    except KeyError as error:  # name the file in the message
        raise KeyError(f'{args.src}: {error.args[0]}') from error
    if not args.allow_partial:
        if args.config is not None:
            check_fits_config(state_dict, args.src, args.config)
        elif task == 'classification':
            check_whole_classifier(state_dict, args.src)
    out_dir = osp.dirname(osp.abspath(args.dst))
    os.makedirs(out_dir, exist_ok=True)
    # Only tensors and strings: the result loads with torch.load(weights_only=True).
    torch.save(
        {'state_dict': state_dict, 'meta': {'converted_from': osp.basename(args.src)}}, args.dst
    )
    num_backbone = sum(k.startswith('backbone.') for k in state_dict)
    print(
        f'wrote {args.dst} ({task}): {num_backbone} backbone and '
        f'{len(state_dict) - num_backbone} other tensors'
    )


if __name__ == '__main__':
    main()
