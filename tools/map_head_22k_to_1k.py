"""Map the 21,841-class ImageNet-22K head of a checkpoint to the 1,000 ImageNet-1K classes.

The official fine-tunes (L/XL/H/G, 22K -> 1K) start from 22K checkpoints and keep, for
each 1K class, the head row of its 22K class: line ``i`` of the mapping file (the
official ``map22kto1k.txt``, one integer per line) is the 22K index of 1K class ``i``.
Every tensor whose first dimension is 21,841 (the classifier's weight and bias) is
reduced to those rows; everything else is copied unchanged.

    python tools/map_head_22k_to_1k.py CKPT_22K map22kto1k.txt OUT.pth [--trust-checkpoint]

CKPT_22K may be a local file or a URL; it is read as ``tools/convert_checkpoint.py`` reads
its source (``weights_only=True``, and a full unpickle only with ``--trust-checkpoint``).
"""

import argparse
import os.path as osp
import sys

import torch

# Run from a checkout without installing: make the repository importable.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from internimage.checkpoint import load_checkpoint_file
from internimage.checkpoint.head_22k import map_head_22k_to_1k, read_mapping


def _weights_of(checkpoint: dict) -> str:
    """The key holding the weights in an official (``model``) or mmengine checkpoint."""
    for key in ('model', 'state_dict'):
        if isinstance(checkpoint.get(key), dict):
            return key
    return ''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('checkpoint', help='22K checkpoint (official or mmengine layout)')
    parser.add_argument('mapping', help='map22kto1k.txt: the 22K index of each 1K class')
    parser.add_argument('out', help='where to write the checkpoint with the 1K head')
    parser.add_argument(
        '--trust-checkpoint',
        action='store_true',
        help='read CKPT_22K with a full unpickle (it can run code from the file): only for a '
        'trusted file that pickles more than tensors',
    )
    args = parser.parse_args()

    mapping = read_mapping(args.mapping)
    checkpoint = load_checkpoint_file(args.checkpoint, trust=args.trust_checkpoint)
    key = _weights_of(checkpoint)
    weights = checkpoint[key] if key else checkpoint
    mapped = map_head_22k_to_1k(weights, mapping)
    if key:
        checkpoint = dict(checkpoint, **{key: mapped})
        if key == 'model' and isinstance(checkpoint.get('model_ema'), dict):
            checkpoint['model_ema'] = map_head_22k_to_1k(checkpoint['model_ema'], mapping)
    else:
        checkpoint = mapped
    torch.save(checkpoint, args.out)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
