"""Evaluate a checkpoint on a config's test split.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--show-dir DIR] [--amp]
        [--tta] [--cfg-options KEY=VALUE ...] [--launcher {none,pytorch,slurm,mpi}]
        [--allow-partial]

--amp runs the backbone and neck in bfloat16 on the CPU (float16 on CUDA); the heads and
post-processing stay float32 (docs/inference.md).

The task (mmpretrain / mmdet / mmseg) comes from the config's default_scope;
the metrics are the config's test_evaluator (accuracy, COCO AP or mIoU).
A checkpoint that does not fit the model (missing or unexpected keys, other shapes), or
cannot be read, is refused before evaluation unless --allow-partial (docs/checkpoints.md).
"""

import argparse
import os.path as osp
import sys

# Run from a checkout without installing: make the repository importable.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from internimage import apis, partial_checkpoint_loading


def parse_args(argv=None) -> argparse.Namespace:
    parser = apis.config_parser(__doc__)
    parser.add_argument('checkpoint', help='checkpoint file to evaluate')
    parser.add_argument('--show-dir', help='save rendered predictions in this directory')
    parser.add_argument(
        '--tta',
        action='store_true',
        help="test-time augmentation: the config's tta_pipeline and tta_model (e.g. the "
        'multi-scale + flip test of a *_ms segmentation config)',
    )
    parser.add_argument(
        '--amp', action='store_true', help='backbone and neck in bfloat16 (CPU) / float16 (CUDA)'
    )
    apis.add_common_args(parser)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    apis.check_checkpoint_file(args.checkpoint)
    cfg = apis.load_config(args)
    cfg.load_from = args.checkpoint
    if args.tta:
        apis.enable_tta(cfg)
    if args.show_dir is not None:
        apis.enable_show_dir(cfg, args.show_dir)
    if args.amp:
        apis.enable_amp_test(cfg)
    runner = apis.build_runner(cfg)
    with partial_checkpoint_loading(args.allow_partial):
        runner.test()
    del runner  # frees the model wrapper, which holds the process group
    apis.teardown_distributed()


if __name__ == '__main__':
    main()
