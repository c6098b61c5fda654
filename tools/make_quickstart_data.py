"""Write the synthetic quick-start dataset (COCO, mmseg and class folders).

    python tools/make_quickstart_data.py [--out data/quickstart] [--force]

Deterministic and idempotent: a second run with the same settings does
nothing. See internimage/datasets/quickstart.py for what the scenes look like.
"""

import argparse
import os.path as osp
import sys
import time

# Run from a checkout without installing: make the repository importable.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from internimage.datasets import QuickstartSpec, make_quickstart_data


def parse_args(argv=None) -> argparse.Namespace:
    defaults = QuickstartSpec()
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--out', default='data/quickstart', help='output directory (default: data/quickstart)'
    )
    parser.add_argument(
        '--num-train',
        type=int,
        default=defaults.num_train,
        help='detection/segmentation train scenes',
    )
    parser.add_argument(
        '--num-val', type=int, default=defaults.num_val, help='detection/segmentation val scenes'
    )
    parser.add_argument(
        '--image-size', type=int, default=defaults.image_size, help='side of the scene images'
    )
    parser.add_argument('--seed', type=int, default=defaults.seed)
    parser.add_argument(
        '--force', action='store_true', help='regenerate even if the data is up to date'
    )
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    spec = QuickstartSpec(
        num_train=args.num_train, num_val=args.num_val, image_size=args.image_size, seed=args.seed
    )
    start = time.perf_counter()
    root = make_quickstart_data(args.out, spec, force=args.force)
    print(f'quick-start data ready in {root} ({time.perf_counter() - start:.1f} s)')


if __name__ == '__main__':
    main()
