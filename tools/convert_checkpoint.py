"""Convert an official InternImage classification or whole-model segmentation checkpoint.

    python tools/convert_checkpoint.py SRC DST [--task segmentation [--num-classes N]]
        [--trust-checkpoint]

SRC is a released classification file (``{'model': state_dict}``, e.g.
internimage_t_1k_224.pth); DST loads into the ``ImageClassifier`` of
``configs/classification/internimage-*.py`` (``tools/test.py CONFIG DST``).
Backbone keys move under ``backbone.``; the head under ``head.`` (its final Linear
``head.*`` becomes ``head.fc.*``). Detection/segmentation files need no conversion:
the backbone's ``init_cfg=dict(type='Pretrained', checkpoint=...)`` reads them directly.
``--task segmentation`` converts a released whole segmentation model (mmseg 0.x UperNet,
SegFormer or the official Mask2Former head) for ``configs/segmentation/``
(``internimage.checkpoint.segmentation``); ``--num-classes 19`` keeps the Cityscapes
outputs of the UperNet / SegFormer files whose heads have 150.
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
from internimage.checkpoint.segmentation import convert_segmentation_checkpoint


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='official checkpoint (.pth)')
    parser.add_argument('dst', help='output path of the converted checkpoint')
    parser.add_argument(
        '--trust-checkpoint',
        action='store_true',
        help='read SRC with a full unpickle (it can run code from the file): only for a '
        'trusted file that pickles more than tensors',
    )
    parser.add_argument(
        '--task',
        choices=('classification', 'segmentation'),
        default='classification',
        help='what SRC holds: a classifier (default) or a whole segmentation model',
    )
    parser.add_argument(
        '--num-classes',
        type=int,
        help='segmentation: keep the first N outputs of the conv_seg classifiers',
    )
    args = parser.parse_args(argv)
    if args.num_classes is not None and args.task != 'segmentation':
        parser.error('--num-classes applies to --task segmentation only')
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    checkpoint = load_checkpoint_file(args.src, trust=args.trust_checkpoint)
    if args.task == 'segmentation':
        state_dict = convert_segmentation_checkpoint(
            extract_state_dict(checkpoint), num_classes=args.num_classes
        )
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
