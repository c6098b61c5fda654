"""What the benchmark tools share (tools/benchmark_dcnv3.py, tools/benchmark_model.py):
timing and the plain-text tables they print."""

import os
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch.utils.benchmark import Timer

__all__ = [
    'format_row',
    'interleaved_medians',
    'load_note',
    'median_seconds',
    'print_table',
    'speedup',
]


def median_seconds(fn: Callable[[], None], min_run_time: float, warmup: int = 1) -> float:
    """Median seconds of one ``fn()`` call: ``torch.utils.benchmark.Timer``'s
    ``blocked_autorange`` (it synchronises CUDA around the timed blocks), after ``warmup``
    untimed calls.

    Args:
        fn (Callable): The step to time, without arguments.
        min_run_time (float): Seconds of timed calls at least.
        warmup (int): Untimed calls first. Defaults to 1.
    """
    for _ in range(warmup):
        fn()
    timer = Timer('fn()', globals={'fn': fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median


def interleaved_medians(
    steps: Dict[str, Callable[[], None]], warmup: int, iters: int
) -> Dict[str, float]:
    """Median seconds of each step, the steps timed one after another in every iteration
    (CPU), so that a slow spell of the machine hits all of them alike.

    A hand-written loop: ``Timer`` times one statement at a time, so it cannot interleave.

    Args:
        steps (dict): Label -> step without arguments.
        warmup (int): Untimed rounds first.
        iters (int): Timed rounds.
    """
    for _ in range(warmup):
        for step in steps.values():
            step()
    times: Dict[str, List[float]] = {label: [] for label in steps}
    for _ in range(iters):
        for label, step in steps.items():
            begin = time.perf_counter()
            step()
            times[label].append(time.perf_counter() - begin)
    return {label: sorted(values)[len(values) // 2] for label, values in times.items()}


def speedup(slow: Optional[float], fast: Optional[float], digits: int = 2) -> str:
    """``slow / fast`` as ``'1.23x'``; ``'n/a'`` when either is missing."""
    if slow is None or fast is None:
        return 'n/a'
    return f'{slow / fast:.{digits}f}x'


def load_note() -> str:
    """``', load average 1.2'`` where the OS reports it, else empty: printed beside CPU
    figures, which other processes distort."""
    return ', load average %.1f' % os.getloadavg()[0] if hasattr(os, 'getloadavg') else ''


def format_row(cells: Sequence[str], widths: Sequence[int]) -> str:
    """Cells left-aligned to ``widths``, separated by ``' | '``."""
    return ' | '.join(str(c).ljust(w) for c, w in zip(cells, widths))


def print_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[int], title: str = ''
) -> None:
    """A title line (when given), the header, a rule and the rows, columns padded to
    ``widths`` (at least the header's)."""
    if header:  # rows after the first are printed without one, in the same widths
        widths = [max(len(h), w) for h, w in zip(header, widths)]
    if title:
        print(title)
    if header:
        print(format_row(header, widths))
        print('-|-'.join('-' * w for w in widths))
    for row in rows:
        print(format_row(row, widths), flush=True)
