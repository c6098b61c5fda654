"""Convert an official InternImage classification checkpoint for mmpretrain.

    python tools/convert_checkpoint.py SRC DST [--config CONFIG] [--allow-partial]
        [--trust-checkpoint]

SRC is a released classification file (``{'model': state_dict}``, e.g.
internimage_t_1k_224.pth); DST loads into the ``ImageClassifier`` of
``configs/classification/internimage-*.py`` (``tools/test.py CONFIG DST``).
Backbone keys move under ``backbone.``; the head under ``head.`` (its final Linear
``head.*`` becomes ``head.fc.*``). Detection/segmentation files need no conversion:
the backbone's ``init_cfg=dict(type='Pretrained', checkpoint=...)`` reads them directly.
SRC may be a local file or a URL (mmengine's checkpoint loader). It is read with
``weights_only=True``; a file that also pickles other objects (e.g. a config) is refused
with the type's name unless ``--trust-checkpoint`` allows a full unpickle.
The result must be a whole classifier: backbone and head (``head.fc.*``) keys; with
``--config`` it must fit that config's model exactly (no missing, unexpected or reshaped
key). Otherwise the conversion is refused, naming SRC and the keys, unless
``--allow-partial`` (docs/checkpoints.md).
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
    load_checkpoint_file,
)


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
    parser.add_argument(
        '--config', help='classification config whose model DST must fit exactly (checked)'
    )
    add_allow_partial_argument(parser)
    return parser.parse_args(argv)


def check_whole_classifier(state_dict: dict, src: str, config: Optional[str]) -> None:
    """Refuse a converted file that cannot fill a whole classifier: no backbone or no
    final Linear (``head.fc.*``), or, with ``config``, any key or shape that differs from
    that config's model (built without loading pre-trained weights)."""
    if config is None:
        missing = [
            key
            for key in ('backbone.patch_embed.conv1.weight', 'head.fc.weight', 'head.fc.bias')
            if key not in state_dict
        ]
        if missing:
            raise CheckpointMismatchError(src, missing, [], [])
        return
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    check_state_dict_fits(model, state_dict, src)


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        state_dict = convert_classification_checkpoint(
            load_checkpoint_file(args.src, trust=args.trust_checkpoint)
        )
    except KeyError as error:  # name the file in the message
        raise KeyError(f'{args.src}: {error.args[0]}') from error
    if not args.allow_partial:
        check_whole_classifier(state_dict, args.src, args.config)
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
