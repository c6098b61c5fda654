"""Benchmark the compiled DCNv3 op against pure-PyTorch formulations, and DCNv4 beside it.

Shapes are the InternImage-T stages at 224x224 input (batch from ``--batch``) and a
detection-size stage-1 map (batch 2). For each shape, dtype and thread count it prints
forward and forward+backward medians of the official repository's pure-PyTorch formulation
(``ops_dcnv3.baselines.dcnv3_grid_sample_official``), of our faster pure-PyTorch baseline
(``dcnv3_pytorch_fast``) and of the compiled op, the op's speed-up over the baseline, the achieved
bandwidth of the compiled op (compulsory bytes / time) as a fraction of a plain tensor copy
measured in the same run, and the peak memory the torch allocator reached above what was
live before the run (CUDA: ``torch.cuda.max_memory_allocated``; CPU: the profiler's
allocation trace).

After the table it checks the goals of the operator against the rows just measured: the
baseline at least as fast as the official formulation on every row (so that the speed-ups
are not measured against a slow denominator), forward+backward at least 20x faster than the
baseline on every shape, the stage-1 forward at 50% or more of the copy bandwidth (at batch
64), float16/bfloat16 forwards no slower than float32, and on the CPU the bfloat16 stage-1
forward at least 1.6x the float32 one (the half-type goals need float32 and the half type in
the same run). The GPU goals are printed on the CPU too, for reference.

``--dcnv4`` adds a table of the DCNv4 op (packed offset+weight tensor, no softmax) beside
DCNv3 as InternImage runs it (mask logits, softmax fused in the kernels) on the same shapes,
threads and dtypes; fwd+bwd includes all parameter gradients.

``--softmax-fusion`` adds a table of the op fed mask logits with ``softmax_mask=True`` (the
kernels apply the softmax) against torch.softmax followed by the op, as the DCNv3 module
did before the fusion; fwd+bwd includes the gradient of the logits.

Examples::

    python tools/benchmark_dcnv3.py                       # CPU, 1 thread and all threads
    python tools/benchmark_dcnv3.py --quick               # smoke run, a few seconds
    python tools/benchmark_dcnv3.py --device cuda        # batch 64; float32, float16, bfloat16
    python tools/benchmark_dcnv3.py --device cuda --dtype float16
    python tools/benchmark_dcnv3.py --shapes s1,det --threads 1,2 --batch 8
    python tools/benchmark_dcnv3.py --softmax-fusion --shapes s1 --threads 2
    python tools/benchmark_dcnv3.py --dcnv4 --shapes s1 --threads 1,2   # DCNv4 vs DCNv3
    python tools/benchmark_dcnv3.py --shapes s1 --threads 1 --dtype float32,bfloat16
"""

import argparse
import contextlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from internimage.analysis.benchmark import (  # noqa: E402
    load_note,
    median_seconds,
    print_table,
    speedup,
)
from ops_dcnv3 import dcnv3, dcnv3_reference, dcnv4, pack_offset_mask  # noqa: E402
from ops_dcnv3.baselines import dcnv3_grid_sample_official, dcnv3_pytorch_fast  # noqa: E402
from ops_dcnv3.testing import DCNv3Config, make_inputs  # noqa: E402


@dataclass(frozen=True)
class Shape:
    name: str
    height: int
    width: int
    channels: int
    group: int
    batch: Optional[int] = None  # None: taken from --batch

    def describe(self, batch: int) -> str:
        return f'{self.name} {batch}x{self.height}x{self.width}x{self.channels} G{self.group}'


SHAPES = {
    's1': Shape('s1', 56, 56, 64, 4),
    's2': Shape('s2', 28, 28, 128, 8),
    's3': Shape('s3', 14, 14, 256, 16),
    's4': Shape('s4', 7, 7, 512, 32),
    'det': Shape('det', 200, 336, 64, 4, batch=2),
}
DTYPES = {
    'float32': torch.float32,
    'float64': torch.float64,
    'float16': torch.float16,
    'bfloat16': torch.bfloat16,
}


def median_ms(fn: Callable[[], None], args: argparse.Namespace) -> float:
    """Median ms of ``fn()`` (``torch.utils.benchmark.Timer``, at least ``--min-time``
    seconds of calls after ``--warmup``)."""
    return 1e3 * median_seconds(fn, min_run_time=args.min_time, warmup=args.warmup)


@contextlib.contextmanager
def quiet_stderr():
    """Silences the profiler's C++ log lines (file descriptor 2) for the table's sake."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, 'w') as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_memory_mb(fn: Callable[[], None], device: str) -> float:
    """Peak torch allocations of one ``fn()`` call above those live before it, in MiB."""
    if device == 'cuda':
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    # CPU: torch keeps no allocator statistics; replay the profiler's allocation events
    # (bytes > 0 allocated, < 0 freed) in order and take the highest running total.
    with (
        quiet_stderr(),
        torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True
        ) as prof,
    ):
        fn()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'trace.json')
        prof.export_chrome_trace(path)
        with open(path) as f:
            events = json.load(f)['traceEvents']
    memory = sorted(
        (e for e in events if e.get('name') == '[memory]' and e['args'].get('Device Type') == 0),
        key=lambda e: (e['ts'], e['args'].get('Ev Idx', 0)),
    )
    live = peak = 0
    for event in memory:
        live += event['args']['Bytes']
        peak = max(peak, live)
    return peak / 2**20


def copy_bandwidth_gbs(device: str, args: argparse.Namespace) -> float:
    """Device copy bandwidth (read + write bytes / time) of a large tensor copy."""
    numel = (256 if device == 'cuda' else 64) * 2**20
    src = torch.empty(numel, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    ms = median_ms(lambda: dst.copy_(src), args)
    return 2 * numel * 4 / (ms * 1e-3) / 1e9


def compulsory_bytes(
    shape: Shape, batch: int, cfg: DCNv3Config, dtype: torch.dtype
) -> Tuple[int, int]:
    """Bytes any implementation must move: forward, and forward + backward."""
    out_h, out_w = cfg.output_size(shape.height, shape.width)
    input_numel = batch * shape.height * shape.width * shape.channels
    pixels = batch * out_h * out_w
    mask_numel = pixels * cfg.group * cfg.num_points
    offset_numel = 2 * mask_numel
    output_numel = pixels * shape.channels
    forward = input_numel + offset_numel + mask_numel + output_numel
    # backward reads the three inputs and grad_output, writes the three gradients
    backward = 2 * (input_numel + offset_numel + mask_numel) + output_numel
    size = torch.finfo(dtype).bits // 8
    return forward * size, (forward + backward) * size


def bench_op(
    op: Callable,
    inputs,
    cfg: DCNv3Config,
    device: str,
    args: argparse.Namespace,
    peak_memory: bool = True,
) -> Dict[str, float]:
    leaves = [t.detach().clone().requires_grad_() for t in inputs]
    grad_output = torch.randn_like(op(*inputs, **cfg.kwargs))

    def forward():
        with torch.no_grad():
            op(*inputs, **cfg.kwargs)

    def clear_grads():
        for leaf in leaves:
            leaf.grad = None

    def forward_backward():
        clear_grads()
        op(*leaves, **cfg.kwargs).backward(grad_output)

    result = {'fwd': median_ms(forward, args), 'fwd_bwd': median_ms(forward_backward, args)}
    if peak_memory:
        clear_grads()  # the peak then counts the gradients one backward allocates
        result['peak_mb'] = peak_memory_mb(forward_backward, device)
    return result


def run(args: argparse.Namespace) -> List[Dict]:
    device = args.device
    if device == 'cuda' and not torch.cuda.is_available():
        sys.exit('--device cuda: no CUDA device is available')
    threads = [None] if device == 'cuda' else args.threads
    results: List[Dict] = []
    for n_threads in threads:
        if n_threads is not None:
            torch.set_num_threads(n_threads)
        copy_gbs = copy_bandwidth_gbs(device, args)
        print(
            f'# {device}, threads={n_threads or "-"}: tensor copy bandwidth {copy_gbs:.1f} GB/s'
            f'{load_note()}',
            flush=True,
        )
        for name in args.shapes:
            for dtype_name in args.dtype:
                result = bench_shape(SHAPES[name], DTYPES[dtype_name], device, args)
                result.update(threads=n_threads, copy_gbs=copy_gbs)
                results.append(result)
                widths = [max(len(h), 22 if i in (0, 11, 13) else 11) for i, h in enumerate(HEADER)]
                print_table(HEADER if len(results) == 1 else [], [format_row(result)], widths)
    print()
    for line in goal_report(results, device):
        print(line)
    if args.softmax_fusion:
        print_comparison(
            f'fused softmax ({device}): mask logits in, softmax_mask=True vs torch.softmax '
            'then the op',
            ('separate', 'fused'),
            softmax_fusion_ops,
            threads,
            args,
        )
    if args.dcnv4:
        print_comparison(
            f'DCNv4 vs DCNv3 ({device}): DCNv3 with its softmax fused (as InternImage runs '
            'it), DCNv4 on the packed offset_mask',
            ('dcnv3', 'dcnv4'),
            dcnv4_ops,
            threads,
            args,
        )
    return results


def softmax_fusion_ops(cfg: DCNv3Config, inputs: Tuple[torch.Tensor, ...]):
    """(op, tensors) of torch.softmax then the op, and of the op's fused softmax."""
    input, offset, mask = inputs
    logits = torch.log(mask)

    def separate(input, offset, logits, **kwargs):
        weights = torch.softmax(logits.unflatten(-1, (cfg.group, cfg.num_points)), dim=-1)
        return dcnv3(input, offset, weights.flatten(3), **kwargs)

    def fused(input, offset, logits, **kwargs):
        return dcnv3(input, offset, logits, **kwargs, softmax_mask=True)

    return (separate, (input, offset, logits)), (fused, (input, offset, logits))


def dcnv4_ops(cfg: DCNv3Config, inputs: Tuple[torch.Tensor, ...]):
    """(op, tensors) of DCNv3 on mask logits with the fused softmax, and of DCNv4 on the
    same offsets and weights packed as the official module lays them out."""
    input, offset, mask = inputs
    logits = torch.log(mask)

    def dcnv3_fused(input, offset, logits, **kwargs):
        return dcnv3(input, offset, logits, **kwargs, softmax_mask=True)

    offset_mask = pack_offset_mask(offset, mask, cfg.group)
    return (dcnv3_fused, (input, offset, logits)), (dcnv4, (input, offset_mask))


def print_comparison(
    title: str, names: Tuple[str, str], make_ops: Callable, threads, args: argparse.Namespace
) -> None:
    """A table of two implementations (``make_ops(cfg, inputs)`` gives their (op, tensors))
    on every shape, dtype and thread count: medians and the second's speed-up."""
    first, second = names
    header = ['shape', 'dtype', 'threads', f'{first} fwd ms', f'{second} fwd ms', 'speed-up']
    header += [f'{first} f+b ms', f'{second} f+b ms', 'speed-up']
    print_table(header, [], [0] * len(header), title=f'\n# {title}')
    for n_threads in threads:
        if n_threads is not None:
            torch.set_num_threads(n_threads)
        for name in args.shapes:
            for dtype_name in args.dtype:
                batch, cfg, inputs = shape_inputs(
                    SHAPES[name], DTYPES[dtype_name], args.device, args
                )
                times = [
                    bench_op(op, tensors, cfg, args.device, args)
                    for op, tensors in make_ops(cfg, inputs)
                ]
                cells = [SHAPES[name].describe(batch), dtype_name, str(n_threads or '-')]
                for key in ('fwd', 'fwd_bwd'):
                    old, new = times[0][key], times[1][key]
                    cells += [f'{old:.3f}', f'{new:.3f}', speedup(old, new)]
                print(' | '.join(cells), flush=True)


def shape_inputs(
    shape: Shape, dtype: torch.dtype, device: str, args: argparse.Namespace
) -> Tuple[int, DCNv3Config, Tuple[torch.Tensor, ...]]:
    """Batch, op config and random (input, offset, mask) of one benchmark shape."""
    batch = shape.batch if shape.batch is not None else args.batch
    cfg = DCNv3Config(group=shape.group, group_channels=shape.channels // shape.group)
    return (
        batch,
        cfg,
        make_inputs(cfg, batch, shape.height, shape.width, dtype=dtype, device=device),
    )


def bench_shape(shape: Shape, dtype: torch.dtype, device: str, args: argparse.Namespace) -> Dict:
    """Times, traffic and accuracy of ours, the pure-PyTorch baseline and the official
    formulation on one shape and dtype."""
    batch, cfg, inputs = shape_inputs(shape, dtype, device, args)
    ours = bench_op(dcnv3, inputs, cfg, device, args)
    ref = bench_op(dcnv3_pytorch_fast, inputs, cfg, device, args)
    official = bench_op(dcnv3_grid_sample_official, inputs, cfg, device, args, peak_memory=False)
    with torch.no_grad():
        ours_out = dcnv3(*inputs, **cfg.kwargs).double()
        diff = (ours_out - dcnv3_reference(*inputs, **cfg.kwargs).double()).abs().max().item()
    fwd_bytes, fwd_bwd_bytes = compulsory_bytes(shape, batch, cfg, dtype)
    return dict(
        shape=shape.name,
        label=shape.describe(batch),
        batch=batch,
        dtype=str(dtype).replace('torch.', ''),
        ours=ours,
        ref=ref,
        official=official,
        max_diff=diff,
        fwd_gbs=fwd_bytes / (ours['fwd'] * 1e-3) / 1e9,
        fwd_bwd_gbs=fwd_bwd_bytes / (ours['fwd_bwd'] * 1e-3) / 1e9,
    )


def format_row(r: Dict) -> List[str]:
    ours, ref, official, copy_gbs = r['ours'], r['ref'], r['official'], r['copy_gbs']
    return [
        r['label'],
        r['dtype'],
        str(r['threads'] or '-'),
        f'{official["fwd"]:.3f}',
        f'{ref["fwd"]:.3f}',
        f'{ours["fwd"]:.3f}',
        speedup(ref['fwd'], ours['fwd'], 1),
        f'{official["fwd_bwd"]:.3f}',
        f'{ref["fwd_bwd"]:.3f}',
        f'{ours["fwd_bwd"]:.3f}',
        speedup(ref['fwd_bwd'], ours['fwd_bwd'], 1),
        f'{r["fwd_gbs"]:.1f} / {r["fwd_bwd_gbs"]:.1f}',
        f'{100 * r["fwd_gbs"] / copy_gbs:.0f}% / {100 * r["fwd_bwd_gbs"] / copy_gbs:.0f}%',
        f'{ref["peak_mb"]:.1f} / {ours["peak_mb"]:.1f}',
        f'{r["max_diff"]:.1e}',
    ]


def goal_report(results: List[Dict], device: str) -> List[str]:
    """The operator's goals, checked against the measured rows (one line each)."""

    def verdict(ok: bool) -> str:
        return 'reached' if ok else 'NOT reached'

    lines = [f'# goals ({device}; the targets are set for a GPU)']
    if all('official' in r for r in results):
        # The baseline's time over the official formulation's, forward and fwd+bwd: <= 1.
        ratios = [
            (r['ref'][key] / r['official'][key], r, key)
            for r in results
            for key in ('fwd', 'fwd_bwd')
        ]
        slowest, row, key = max(ratios, key=lambda item: item[0])
        lines.append(
            f'- pure-PyTorch baseline as fast as the official formulation on every row: '
            f'{verdict(slowest <= 1.0)} (slowest {slowest:.2f}x the official time: '
            f'{row["label"]} {row["dtype"]} {key})'
        )
    speedups = [(r['ref']['fwd_bwd'] / r['ours']['fwd_bwd'], r) for r in results]
    worst, worst_row = min(speedups, key=lambda pair: pair[0])
    lines.append(
        f'- fwd+bwd >= 20x the reference on every shape: {verdict(worst >= 20)} '
        f'(lowest {worst:.1f}x: {worst_row["label"]} {worst_row["dtype"]})'
    )
    for r in results:
        if r['shape'] == 's1':
            fraction = r['fwd_gbs'] / r['copy_gbs']
            note = '' if r['batch'] == 64 else f' (measured at batch {r["batch"]}, goal is at 64)'
            lines.append(
                f'- s1 {r["dtype"]} fwd >= 50% of copy bandwidth: '
                f'{verdict(fraction >= 0.5)} ({100 * fraction:.0f}%){note}'
            )
    fp32 = {
        (r['label'], r['threads']): r['ours']['fwd'] for r in results if r['dtype'] == 'float32'
    }
    for half in ('float16', 'bfloat16'):
        pairs = [
            (r['ours']['fwd'] / fp32[(r['label'], r['threads'])], r)
            for r in results
            if r['dtype'] == half and (r['label'], r['threads']) in fp32
        ]
        if not pairs:
            continue
        slowest, slowest_row = max(pairs, key=lambda pair: pair[0])
        lines.append(
            f'- {half} fwd no slower than float32: {verdict(slowest <= 1.0)} '
            f'(slowest {slowest:.2f}x the float32 time: {slowest_row["label"]})'
        )
        if half == 'bfloat16' and device == 'cpu':
            for ratio, r in pairs:
                if r['shape'] == 's1':
                    lines.append(
                        f'- CPU bfloat16 s1 fwd >= 1.6x float32 (threads={r["threads"]}): '
                        f'{verdict(1 / ratio >= 1.6)} ({1 / ratio:.2f}x)'
                    )
    return lines


# official: the official repository's pure-PyTorch formulation; baseline: ours
# (ops_dcnv3.baselines); speed-up: the compiled op over the baseline; max |diff|: the compiled
# op against dcnv3_reference.
HEADER = [
    'shape (NxHxWxC)',
    'dtype',
    'threads',
    'official fwd ms',
    'baseline fwd ms',
    'ours fwd ms',
    'speed-up',
    'official f+b ms',
    'baseline f+b ms',
    'ours f+b ms',
    'speed-up',
    'ours GB/s fwd / f+b',
    '% of copy',
    'peak MiB baseline / ours',
    'max |diff|',
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument(
        '--batch',
        type=int,
        default=None,
        help='batch of the classification stages (default: 8 on CPU, 64 on CUDA)',
    )
    parser.add_argument(
        '--dtype',
        default=None,
        help=f'comma-separated subset of {list(DTYPES)} (default: float32 on '
        'CPU; float32,float16,bfloat16 on CUDA)',
    )
    parser.add_argument(
        '--threads',
        default=None,
        help='comma-separated CPU thread counts (default: 1 and all cores)',
    )
    parser.add_argument(
        '--shapes',
        default=','.join(SHAPES),
        help=f'comma-separated subset of {list(SHAPES)} (default: all)',
    )
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--min-time', type=float, default=1.0, help='seconds per measurement')
    parser.add_argument(
        '--softmax-fusion',
        action='store_true',
        help='also time the fused mask softmax against a separate one',
    )
    parser.add_argument(
        '--dcnv4',
        action='store_true',
        help='also time the DCNv4 op beside DCNv3 (fused softmax) on the same shapes',
    )
    parser.add_argument(
        '--quick',
        action='store_true',
        help='smoke run: batch 1, shapes s1,s4, one thread setting, short measurements',
    )
    return parser


def comma_list(parser: argparse.ArgumentParser, flag: str, value: str, known) -> List[str]:
    """The items of a comma-separated flag, each one of ``known`` (else a parser error)."""
    items = [item.strip() for item in value.split(',') if item.strip()]
    unknown = [item for item in items if item not in known]
    if unknown or not items:
        parser.error(f'{flag}: unknown {unknown}; choose from {list(known)}')
    return items


def thread_counts(parser: argparse.ArgumentParser, value: Optional[str]) -> List[int]:
    """``--threads`` as ints >= 1 (default: 1 and all cores)."""
    all_cores = os.cpu_count() or 1
    if value is None:
        return [1, all_cores] if all_cores > 1 else [1]
    try:
        threads = [int(t) for t in value.split(',')]
    except ValueError:
        parser.error(f'--threads must be comma-separated integers, got {value!r}')
    if any(t < 1 for t in threads):
        parser.error(f'--threads must be >= 1, got {threads}')
    return threads


def parse_args(argv=None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quick:
        args.batch = 1 if args.batch is None else args.batch
        args.shapes = 's1,s4' if args.shapes == ','.join(SHAPES) else args.shapes
        args.threads = args.threads or str(os.cpu_count() or 1)
        args.warmup, args.min_time = 1, 0.05
    if args.batch is None:
        args.batch = 64 if args.device == 'cuda' else 8
    if args.batch < 1:
        parser.error(f'--batch must be >= 1, got {args.batch}')
    if args.dtype is None:
        args.dtype = 'float32,float16,bfloat16' if args.device == 'cuda' else 'float32'
    args.dtype = comma_list(parser, '--dtype', args.dtype, DTYPES)
    args.shapes = comma_list(parser, '--shapes', args.shapes, SHAPES)
    args.threads = thread_counts(parser, args.threads)
    return args


if __name__ == '__main__':
    run(parse_args())
