"""tools/benchmark_dcnv3.py: traffic model, argument checks and a smoke run."""

import subprocess
import sys

import pytest
import torch

from ops_dcnv3.testing import DCNv3Config
from tests.tool_runs import load_tool


@pytest.fixture(scope='module')
def script(repo_root):
    return repo_root / 'tools' / 'benchmark_dcnv3.py'


@pytest.fixture(scope='module')
def benchmark():
    return load_tool('benchmark_dcnv3.py')


def test_compulsory_bytes_stage1(benchmark):
    # InternImage-T stage 1, batch 64, fp32 moves 189.5 MB forward
    # (C + 27G values read per pixel plus C written: 3.7 * C elements at Cg = 16).
    shape = benchmark.SHAPES['s1']
    cfg = DCNv3Config(group=4, group_channels=16)
    forward, forward_backward = benchmark.compulsory_bytes(shape, 64, cfg, torch.float32)
    pixels = 64 * 56 * 56
    assert forward == pixels * (64 + 4 * 27 + 64) * 4
    assert forward / 1e6 == pytest.approx(189.5, abs=0.1)
    # backward: read input, offset, mask, grad_output; write the three gradients
    assert forward_backward - forward == pixels * (2 * (64 + 4 * 27) + 64) * 4


@pytest.mark.parametrize(
    'argv, message',
    [
        (['--shapes', 's1,s9'], 'unknown'),
        (['--threads', 'two'], 'comma-separated integers'),
        (['--threads', '0'], '--threads must be >= 1'),
        (['--batch', '0'], '--batch must be >= 1'),
        (['--dtype', 'float32,int8'], "--dtype: unknown ['int8']"),
    ],
)
def test_bad_arguments(benchmark, capsys, argv, message):
    with pytest.raises(SystemExit):
        benchmark.parse_args(argv)
    assert message in capsys.readouterr().err


def test_goal_report_reads_the_measured_rows(benchmark):
    def row(shape, dtype, ref_fwd_bwd, ours_fwd_bwd, ours_fwd, fwd_gbs):
        return dict(
            shape=shape,
            label=f'{shape} 64x',
            batch=64,
            dtype=dtype,
            threads=None,
            copy_gbs=1000.0,
            fwd_gbs=fwd_gbs,
            fwd_bwd_gbs=0.0,
            max_diff=0.0,
            ref={'fwd': 1.0, 'fwd_bwd': ref_fwd_bwd},
            ours={'fwd': ours_fwd, 'fwd_bwd': ours_fwd_bwd},
        )

    rows = [
        row('s1', 'float32', 50.0, 2.0, 1.0, 600.0),  # 25x, 60% of copy
        row('s1', 'float16', 50.0, 1.0, 0.8, 400.0),  # 50x, 40%, 0.8x fp32 time
        row('s4', 'float32', 30.0, 2.0, 0.5, 10.0),  # 15x: the lowest
        row('s4', 'float16', 30.0, 1.0, 0.6, 10.0),
    ]  # 1.2x the fp32 time
    lines = benchmark.goal_report(rows, 'cuda')
    assert lines[1] == (
        '- fwd+bwd >= 20x the reference on every shape: NOT reached (lowest 15.0x: s4 64x float32)'
    )
    assert lines[2] == '- s1 float32 fwd >= 50% of copy bandwidth: reached (60%)'
    assert lines[3] == '- s1 float16 fwd >= 50% of copy bandwidth: NOT reached (40%)'
    assert lines[4] == (
        '- float16 fwd no slower than float32: NOT reached (slowest 1.20x the float32 time: s4 64x)'
    )
    assert len(lines) == 5  # no bfloat16 rows, no bfloat16 line


def run_script(script, *argv):
    return subprocess.run(
        [sys.executable, str(script), '--quick', '--shapes', 's4', '--threads', '1', *argv],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=script.parents[1],
    )


@pytest.mark.needs_extension
def test_quick_run_prints_table(script):
    result = run_script(script)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith('shape (NxHxWxC)') for line in lines)
    row = next(line for line in lines if line.startswith('s4 1x7x7x512 G32'))
    cells = [c.strip() for c in row.split('|')]
    assert cells[1:3] == ['float32', '1'] and cells[6].endswith('x')
    # the speed-up is the baseline's time over ours
    assert float(cells[6].rstrip('x')) == pytest.approx(float(cells[4]) / float(cells[5]), rel=0.1)
    assert float(cells[-1]) < 1e-4  # max |ours - reference|
    assert '# goals (cpu; the targets are set for a GPU)' in lines
    assert any(
        line.startswith('- pure-PyTorch baseline as fast as the official formulation')
        for line in lines
    )


@pytest.mark.needs_extension
def test_softmax_fusion_table(script):
    result = run_script(script, '--softmax-fusion')
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = lines.index(
        'shape | dtype | threads | separate fwd ms | fused fwd ms | speed-up | '
        'separate f+b ms | fused f+b ms | speed-up'
    )
    cells = [c.strip() for c in lines[header + 2].split('|')]
    assert cells[:3] == ['s4 1x7x7x512 G32', 'float32', '1']
    separate, fused, speedup = float(cells[3]), float(cells[4]), float(cells[5].rstrip('x'))
    assert speedup == pytest.approx(separate / fused, rel=0.02, abs=0.01)


@pytest.mark.needs_extension
def test_dcnv4_table(script):
    result = run_script(script, '--dcnv4')
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = lines.index(
        'shape | dtype | threads | dcnv3 fwd ms | dcnv4 fwd ms | speed-up | '
        'dcnv3 f+b ms | dcnv4 f+b ms | speed-up'
    )
    cells = [c.strip() for c in lines[header + 2].split('|')]
    assert cells[:3] == ['s4 1x7x7x512 G32', 'float32', '1']
    old, new, speedup = float(cells[6]), float(cells[7]), float(cells[8].rstrip('x'))
    assert speedup == pytest.approx(old / new, rel=0.02, abs=0.01)
