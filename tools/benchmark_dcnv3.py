"""Benchmark the compiled DCNv3 op against the pure-PyTorch reference, and DCNv4 beside it.

Shapes are the InternImage-T stages at 224x224 input (batch from ``--batch``) and a
detection-size stage-1 map (batch 2). For each shape, dtype and thread count it prints
forward and forward+backward medians of both implementations and their ratio, the achieved
bandwidth of the compiled op (compulsory bytes / time) as a fraction of a plain tensor copy
measured in the same run, and the peak memory the torch allocator reached above what was
live before the run (CUDA: ``torch.cuda.max_memory_allocated``; CPU: the profiler's
allocation trace).

After the table it checks the GPU goals of the operator against the rows just measured:
forward+backward at least 20x faster than the reference on every shape, the stage-1 forward
at 50% or more of the copy bandwidth (at batch 64), and float16/bfloat16 forwards no slower
than float32 (needs float32 and a half type in the same run).

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
"""

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ops_dcnv3 import dcnv3, dcnv3_reference, dcnv4, pack_offset_mask  # noqa: E402
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


def synchronize(device: str) -> None:
    if device == 'cuda':
        torch.cuda.synchronize()


def median_ms(
    fn: Callable[[], None], device: str, warmup: int, min_runs: int, min_time_s: float
) -> float:
    """Median wall time of ``fn`` in ms: CUDA events on GPU, perf_counter on CPU."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times: List[float] = []
    started = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - started < min_time_s:
        if device == 'cuda':
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            begin = time.perf_counter()
            fn()
            times.append((time.perf_counter() - begin) * 1e3)
        if len(times) >= 1000:
            break
    return statistics.median(times)


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
    ms = median_ms(lambda: dst.copy_(src), device, args.warmup, args.min_runs, args.min_time)
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
    op: Callable, inputs, cfg: DCNv3Config, device: str, args: argparse.Namespace
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

    timing = dict(warmup=args.warmup, min_runs=args.min_runs, min_time_s=args.min_time)
    result = {
        'fwd': median_ms(forward, device, **timing),
        'fwd_bwd': median_ms(forward_backward, device, **timing),
    }
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
        load = ', load average %.1f' % os.getloadavg()[0] if hasattr(os, 'getloadavg') else ''
        print(
            f'# {device}, threads={n_threads or "-"}: tensor copy bandwidth {copy_gbs:.1f} GB/s'
            f'{load}',
            flush=True,
        )
        for name in args.shapes:
            for dtype_name in args.dtype:
                result = bench_shape(SHAPES[name], DTYPES[dtype_name], device, args)
                result.update(threads=n_threads, copy_gbs=copy_gbs)
                results.append(result)
                print_table([format_row(result)], header=len(results) == 1)
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
    print(f'\n# {title}')
    print(' | '.join(header))
    print('-|-'.join('-' * len(h) for h in header))
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
                    cells += [f'{old:.3f}', f'{new:.3f}', f'{old / new:.2f}x']
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
    """Times, traffic and accuracy of ours and the reference on one shape and dtype."""
    batch, cfg, inputs = shape_inputs(shape, dtype, device, args)
    ours = bench_op(dcnv3, inputs, cfg, device, args)
    ref = bench_op(dcnv3_reference, inputs, cfg, device, args)
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
        max_diff=diff,
        fwd_gbs=fwd_bytes / (ours['fwd'] * 1e-3) / 1e9,
        fwd_bwd_gbs=fwd_bwd_bytes / (ours['fwd_bwd'] * 1e-3) / 1e9,
    )


def format_row(r: Dict) -> List[str]:
    ours, ref, copy_gbs = r['ours'], r['ref'], r['copy_gbs']
    return [
        r['label'],
        r['dtype'],
        str(r['threads'] or '-'),
        f'{ref["fwd"]:.3f}',
        f'{ours["fwd"]:.3f}',
        f'{ref["fwd"] / ours["fwd"]:.1f}x',
        f'{ref["fwd_bwd"]:.3f}',
        f'{ours["fwd_bwd"]:.3f}',
        f'{ref["fwd_bwd"] / ours["fwd_bwd"]:.1f}x',
        f'{r["fwd_gbs"]:.1f} / {r["fwd_bwd_gbs"]:.1f}',
        f'{100 * r["fwd_gbs"] / copy_gbs:.0f}% / {100 * r["fwd_bwd_gbs"] / copy_gbs:.0f}%',
        f'{ref["peak_mb"]:.1f} / {ours["peak_mb"]:.1f}',
        f'{r["max_diff"]:.1e}',
    ]


def goal_report(results: List[Dict], device: str) -> List[str]:
    """The operator's GPU goals, checked against the measured rows (one line each)."""

    def verdict(ok: bool) -> str:
        return 'reached' if ok else 'NOT reached'

    lines = [f'# goals ({device}; the targets are set for a GPU)']
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
    return lines


HEADER = [
    'shape (NxHxWxC)',
    'dtype',
    'threads',
    'ref fwd ms',
    'ours fwd ms',
    'speed-up',
    'ref f+b ms',
    'ours f+b ms',
    'speed-up',
    'ours GB/s fwd / f+b',
    '% of copy',
    'peak MiB ref / ours',
    'max |diff|',
]


def print_table(rows: List[List[str]], header: bool) -> None:
    widths = [max(len(h), 22 if i in (0, 9, 11) else 11) for i, h in enumerate(HEADER)]
    if header:
        print(' | '.join(h.ljust(w) for h, w in zip(HEADER, widths)))
        print('-|-'.join('-' * w for w in widths))
    for row in rows:
        print(' | '.join(c.ljust(w) for c, w in zip(row, widths)), flush=True)


def parse_args(argv=None) -> argparse.Namespace:
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
    parser.add_argument('--min-runs', type=int, default=10)
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
        help='smoke run: batch 1, shapes s1,s4, one thread setting, few runs',
    )
    args = parser.parse_args(argv)

    all_cores = os.cpu_count() or 1
    if args.quick:
        args.batch = 1 if args.batch is None else args.batch
        args.shapes = 's1,s4' if args.shapes == ','.join(SHAPES) else args.shapes
        args.threads = args.threads or str(all_cores)
        args.warmup, args.min_runs, args.min_time = 1, 3, 0.0
    if args.batch is None:
        args.batch = 64 if args.device == 'cuda' else 8
    if args.batch < 1:
        parser.error(f'--batch must be >= 1, got {args.batch}')
    if args.dtype is None:
        args.dtype = 'float32,float16,bfloat16' if args.device == 'cuda' else 'float32'
    args.dtype = [d.strip() for d in args.dtype.split(',') if d.strip()]
    unknown = [d for d in args.dtype if d not in DTYPES]
    if unknown or not args.dtype:
        parser.error(f'--dtype: unknown {unknown}; choose from {list(DTYPES)}')
    args.shapes = [s.strip() for s in args.shapes.split(',') if s.strip()]
    unknown = [s for s in args.shapes if s not in SHAPES]
    if unknown:
        parser.error(f'--shapes: unknown {unknown}; choose from {list(SHAPES)}')
    try:
        args.threads = (
            ([1, all_cores] if all_cores > 1 else [1])
            if args.threads is None
            else [int(t) for t in args.threads.split(',')]
        )
    except ValueError:
        parser.error(f'--threads must be comma-separated integers, got {args.threads!r}')
    if any(t < 1 for t in args.threads):
        parser.error(f'--threads must be >= 1, got {args.threads}')
    return args


if __name__ == '__main__':
    run(parse_args())
