"""FLOPs and parameters of a model config, counted as InternImage publishes them.

    python tools/get_flops.py CONFIG [--shape H W] [--cfg-options KEY=VALUE ...]

FLOPs are multiply-accumulates of the dense layers (mmengine's FlopAnalyzer) plus the
DCNv3 core, 5 * H * W * K * C per DCNv3 layer (see internimage/analysis/flops.py).
Classification (mmpretrain) and segmentation (mmseg) configs count the whole model
at inference; detection (mmdet) configs count backbone + neck, since the detection
heads need image metadata to run.
"""

import argparse
import os.path as osp
import sys

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from torch import nn

# Run from a checkout without installing: make the repository importable.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from internimage.analysis import count_flops  # also registers InternImage & co.
from internimage.apis import config_parser


class _BackboneNeck(nn.Module):
    """Backbone followed by the optional neck (the part of a detector that runs alone)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.backbone = model.backbone
        self.neck = getattr(model, 'neck', None)

    def forward(self, x: torch.Tensor):
        feats = self.backbone(x)
        return self.neck(feats) if self.neck is not None else feats


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


def build_counted_model(cfg: Config) -> nn.Module:
    """The config's model in eval mode, reduced to backbone + neck for detectors."""
    scope = cfg.get('default_scope', 'mmpretrain')
    init_default_scope(scope)
    from mmengine.registry import MODELS

    model = MODELS.build(cfg.model)
    if scope == 'mmdet':
        model = _BackboneNeck(model)
    return model.eval()


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model = build_counted_model(cfg)
    height, width = args.shape
    result = count_flops(model, (torch.randn(1, 3, height, width),))
    counted = 'backbone + neck' if isinstance(model, _BackboneNeck) else 'model'
    print(
        f'config: {args.config} ({counted}, input 3x{height}x{width})\n'
        f'FLOPs: {result["total"] / 1e9:.3f} G  (dense {result["dense"] / 1e9:.3f} G + '
        f'DCNv3 core {result["dcnv3_core"] / 1e9:.3f} G)\n'
        f'Params: {result["params"] / 1e6:.3f} M'
    )
    return result


if __name__ == '__main__':
    main()
