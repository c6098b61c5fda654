"""Evaluate a checkpoint on a config's test split.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--show-dir DIR]
        [--cfg-options KEY=VALUE ...] [--launcher {none,pytorch,slurm,mpi}]

The task (mmpretrain / mmdet / mmseg) comes from the config's default_scope;
the metrics are the config's test_evaluator (accuracy, COCO AP or mIoU).
"""

import argparse
import os.path as osp
import sys

# Run from a checkout without installing: make the repository importable.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from internimage.engine import (
    add_common_args,
    build_runner,  # noqa: E402
    enable_show_dir,
    load_config,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file to evaluate')
    parser.add_argument('--show-dir', help='save rendered predictions in this directory')
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    cfg = load_config(args)
    cfg.load_from = args.checkpoint
    if args.show_dir is not None:
        enable_show_dir(cfg, args.show_dir)
    build_runner(cfg).test()


if __name__ == '__main__':
    main()
