"""Convert an official InternImage classification or detection checkpoint for OpenMMLab 2.0.

    python tools/convert_checkpoint.py SRC DST [--trust-checkpoint]

A detection file (mmdet 2.x: Mask R-CNN, Cascade, the official DINO / CB-DINO heads) is
recognised by its keys and converted for the mmdet 3.x configs of configs/detection
(``internimage.checkpoint.detection``); anything else is taken for a classification file.

SRC is a released classification file (``{'model': state_dict}``, e.g.
internimage_t_1k_224.pth); DST loads into the ``ImageClassifier`` of
``configs/classification/internimage-*.py`` (``tools/test.py CONFIG DST``).
Backbone keys move under ``backbone.``; the head under ``head.`` (its final Linear
``head.*`` becomes ``head.fc.*``). Detection/segmentation files need no conversion:
the backbone's ``init_cfg=dict(type='Pretrained', checkpoint=...)`` reads them directly.
SRC may be a local file or a URL (mmengine's checkpoint loader). It is read with
``weights_only=True``; a file that also pickles other objects (e.g. a config) is refused
with the type's name unless ``--trust-checkpoint`` allows a full unpickle.
"""

import argparse
import os
import os.path as osp
import sys

import torch

# Run from a checkout without installing: make the repository importable.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from internimage.checkpoint import (
    convert_classification_checkpoint,
    extract_state_dict,
    load_checkpoint_file,
)
from internimage.checkpoint.detection import convert_detection_checkpoint

_DETECTION_PREFIXES = ('rpn_head.', 'roi_head.', 'bbox_head.')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='official classification checkpoint (.pth)')
    parser.add_argument('dst', help='output path for the mmpretrain checkpoint')
    parser.add_argument(
        '--trust-checkpoint',
        action='store_true',
        help='read SRC with a full unpickle (it can run code from the file): only for a '
        'trusted file that pickles more than tensors',
    )
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    checkpoint = load_checkpoint_file(args.src, trust=args.trust_checkpoint)
    if any(k.startswith(_DETECTION_PREFIXES) for k in extract_state_dict(checkpoint)):
        state_dict = convert_detection_checkpoint(extract_state_dict(checkpoint))
    else:
        state_dict = convert_classification_checkpoint(checkpoint)
    out_dir = osp.dirname(osp.abspath(args.dst))
    os.makedirs(out_dir, exist_ok=True)
    # Only tensors and strings: the result loads with torch.load(weights_only=True).
    torch.save(
        {'state_dict': state_dict, 'meta': {'converted_from': osp.basename(args.src)}}, args.dst
    )
    num_backbone = sum(k.startswith('backbone.') for k in state_dict)
    print(
        f'wrote {args.dst}: {num_backbone} backbone and '
        f'{len(state_dict) - num_backbone} head tensors'
    )


if __name__ == '__main__':
    main()
