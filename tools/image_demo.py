"""Predict on one image and save the rendered result.

    python tools/image_demo.py CONFIG CHECKPOINT IMAGE [--out-file result.png]
        [--device cpu] [--score-thr 0.3] [--amp] [--allow-partial]

A thin layer over the upstream inferencers (docs/inference.md): mmdet's DetInferencer
draws boxes and masks, mmseg's MMSegInferencer overlays the label map, mmpretrain's
ImageClassificationInferencer writes the predicted class; the task comes from the config.
A checkpoint that does not fit the model, or cannot be read, is refused unless
--allow-partial (docs/checkpoints.md).
"""

import argparse
import os.path as osp
import sys

# Run from a checkout without installing: make the repository importable.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from internimage import partial_checkpoint_loading
from internimage.apis import config_parser, render_prediction
from internimage.checkpoint import add_allow_partial_argument


def parse_args(argv=None) -> argparse.Namespace:
    parser = config_parser(__doc__)
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('image', help='image file')
    parser.add_argument(
        '--out-file', default='result.png', help='rendered output (default: result.png)'
    )
    parser.add_argument('--device', default='cpu', help='torch device (default: cpu)')
    parser.add_argument(
        '--score-thr', type=float, default=0.3, help='detection score threshold for drawing'
    )
    parser.add_argument(
        '--amp', action='store_true', help='backbone and neck in bfloat16 (CPU) / float16 (CUDA)'
    )
    add_allow_partial_argument(parser)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    with partial_checkpoint_loading(args.allow_partial):
        render_prediction(
            args.config,
            args.checkpoint,
            args.image,
            args.out_file,
            args.device,
            args.score_thr,
            amp=args.amp,
        )
    print(f'saved {args.out_file}')


if __name__ == '__main__':
    main()
