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

from internimage import apis, partial_checkpoint_loading


def parse_args(argv=None) -> argparse.Namespace:
    parser = apis.config_parser(__doc__)
    parser.add_argument(
        '--amp',
        action='store_true',
        help='mixed precision: float16 autocast on CUDA, bfloat16 on a machine without one',
    )
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        help='resume from CKPT, or from the latest checkpoint in the work '
        'dir when given without a value',
    )
    apis.add_common_args(parser)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = apis.load_config(args)
    if args.amp:
        apis.enable_amp(cfg)
    apis.enable_resume(cfg, args.resume)
    runner = apis.build_runner(cfg)
    with partial_checkpoint_loading(args.allow_partial):  # load_from / --resume
        runner.train()
    del runner  # frees the model wrapper, which holds the process group
    apis.teardown_distributed()


if __name__ == '__main__':
    main()
