"""Train a classification, detection or segmentation config.

    python tools/train.py CONFIG [--work-dir DIR] [--amp] [--resume [CKPT]]
        [--cfg-options KEY=VALUE ...] [--launcher {none,pytorch,slurm,mpi}]

The task (mmpretrain / mmdet / mmseg) comes from the config's default_scope.
"""

import argparse
import os.path as osp
import sys

# Run from a checkout without installing: make the repository importable.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from internimage.engine import (
    add_common_args,
    build_runner,  # noqa: E402
    enable_amp,
    enable_resume,
    load_config,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file path')
    parser.add_argument('--amp', action='store_true', help='mixed-precision training (CUDA)')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        help='resume from CKPT, or from the latest checkpoint in the work '
        'dir when given without a value',
    )
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = load_config(args)
    if args.amp:
        enable_amp(cfg)
    enable_resume(cfg, args.resume)
    build_runner(cfg).train()


if __name__ == '__main__':
    main()
