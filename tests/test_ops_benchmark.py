"""tools/benchmark_dcnv3.py: traffic model, argument checks and a smoke run."""
import importlib.util
import os
import subprocess
import sys

import pytest
import torch

from ops_dcnv3.testing import DCNv3Config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'tools', 'benchmark_dcnv3.py')


@pytest.fixture(scope='module')
def benchmark():
    spec = importlib.util.spec_from_file_location('benchmark_dcnv3', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compulsory_bytes_stage1(benchmark):
    # DESIGN.md section 7: InternImage-T stage 1, batch 64, fp32 moves 189.5 MB forward
    # (C + 27G values read per pixel plus C written: 3.7 * C elements at Cg = 16).
    shape = benchmark.SHAPES['s1']
    cfg = DCNv3Config(group=4, group_channels=16)
    forward, forward_backward = benchmark.compulsory_bytes(shape, 64, cfg, torch.float32)
    pixels = 64 * 56 * 56
    assert forward == pixels * (64 + 4 * 27 + 64) * 4
    assert forward / 1e6 == pytest.approx(189.5, abs=0.1)
    # backward: read input, offset, mask, grad_output; write the three gradients
    assert forward_backward - forward == pixels * (2 * (64 + 4 * 27) + 64) * 4


@pytest.mark.parametrize('argv, message', [
    (['--shapes', 's1,s9'], 'unknown'),
    (['--threads', 'two'], 'comma-separated integers'),
    (['--threads', '0'], '--threads must be >= 1'),
    (['--batch', '0'], '--batch must be >= 1'),
])
def test_bad_arguments(benchmark, capsys, argv, message):
    with pytest.raises(SystemExit):
        benchmark.parse_args(argv)
    assert message in capsys.readouterr().err


def test_quick_run_prints_table():
    result = subprocess.run(
        [sys.executable, SCRIPT, '--quick', '--shapes', 's4', '--threads', '1'],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith('shape (NxHxWxC)') for line in lines)
    row = next(line for line in lines if line.startswith('s4 1x7x7x512 G32'))
    cells = [c.strip() for c in row.split('|')]
    assert cells[1:3] == ['float32', '1'] and cells[5].endswith('x')
    assert float(cells[-1]) < 1e-4  # max |ours - reference|
