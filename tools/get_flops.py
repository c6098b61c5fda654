"""FLOPs and parameters of a model config, counted as InternImage publishes them.

    python tools/get_flops.py CONFIG [--shape H W] [--cfg-options KEY=VALUE ...]

FLOPs are multiply-accumulates of the dense layers (mmengine's FlopAnalyzer) plus the
deformable core, 5 * H * W * K * C per DCNv3 / DCNv4 layer (internimage/analysis/flops.py).
Classification (mmpretrain) and segmentation (mmseg) configs count the whole model
at inference; detection (mmdet) configs count backbone + neck, since the detection
heads need image metadata to run.
"""

import argparse
import os.path as osp
import sys

import torch
from mmengine.config import Config, DictAction

# Run from a checkout without installing: make the repository importable.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from internimage.analysis import (  # also registers InternImage & co.
    build_counted_model,
    count_flops,
)
from internimage.apis import config_parser


def parse_args(argv=None) -> argparse.Namespace:
    parser = config_parser(__doc__)
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        default=[224, 224],
        metavar=('H', 'W'),
        help='input image size (default: 224 224)',
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, e.g. model.backbone.arch=s',
    )
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model = build_counted_model(cfg)
    height, width = args.shape
    result = count_flops(model, (torch.randn(1, 3, height, width),))
    counted = 'backbone + neck' if cfg.get('default_scope') == 'mmdet' else 'model'
    print(
        f'config: {args.config} ({counted}, input 3x{height}x{width})\n'
        f'FLOPs: {result["total"] / 1e9:.3f} G  (dense {result["dense"] / 1e9:.3f} G + '
        f'deformable core {result["deformable_core"] / 1e9:.3f} G)\n'
        f'Params: {result["params"] / 1e6:.3f} M'
    )
    return result


if __name__ == '__main__':
    main()
