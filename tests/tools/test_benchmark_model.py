"""tools/benchmark_model.py: a tiny CPU run (bfloat16 autocast through the whole model)."""

import re
import subprocess
import sys

import pytest

from tests.tool_runs import ROOT, load_tool, run_tool

BENCHMARK = 'tools/benchmark_model.py'


def run_rejected(*args: str) -> subprocess.CompletedProcess:
    """The benchmark with arguments it must refuse."""
    return subprocess.run(
        [sys.executable, BENCHMARK, *args], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


@pytest.mark.slow
def test_model_benchmark_smoke():
    output = run_tool(
        BENCHMARK, '--device', 'cpu', '--batch', '1', '--size', '64', '--iters', '1',
        '--warmup', '0', '--dtype', 'bfloat16',
    )  # fmt: skip
    rows = {}
    for line in output.splitlines():
        match = re.match(
            r'(InternImage-T|FlashInternImage-T|ConvNeXt-T \(torchvision\))'
            r'\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)',
            line,
        )
        if match:
            rows[match.group(1)] = (float(match.group(2)), float(match.group(3)))
    assert set(rows) == {'InternImage-T', 'FlashInternImage-T', 'ConvNeXt-T (torchvision)'}, output
    assert all(speed > 0 and step_ms > 0 for speed, step_ms in rows.values())
    ratio = re.search(r'inference throughput ([\d.]+)x', output)
    expected = rows['InternImage-T'][0] / rows['ConvNeXt-T (torchvision)'][0]
    # the table rounds img/s to 0.1, so allow for that in the recomputed ratio
    assert ratio and abs(float(ratio.group(1)) - expected) <= 0.05 * expected + 0.01, output
    flash = re.search(r'FlashInternImage-T / InternImage-T: inference throughput ([\d.]+)x', output)
    expected = rows['FlashInternImage-T'][0] / rows['InternImage-T'][0]
    assert flash and abs(float(flash.group(1)) - expected) <= 0.05 * expected + 0.01


@pytest.mark.parametrize('flag', ['--batch', '--train-batch'])
def test_model_benchmark_rejects_bad_batch(flag):
    result = run_rejected(flag, '0')
    assert result.returncode == 2 and f'{flag} must be >= 1' in result.stderr


@pytest.mark.slow
def test_cpu_report_tables():
    """--cpu-report: one latency row per (threads, batch), ratios that are those of the
    printed times, a training-step line per model and the operator profile."""
    output = run_tool(
        BENCHMARK, '--cpu-report', '--no-compile', '--size', '32', '--iters', '1',
        '--warmup', '0', '--report-batches', '1', '2', '--report-threads', '1',
        '--train-batch', '2', '--train-threads', '1',
    )  # fmt: skip
    rows = re.findall(
        r'^\s*(\d+) \|\s*(\d+) \|\s*([\d.]+) \|\s*([\d.]+) \|\s*([\d.]+)x$',
        output,
        flags=re.MULTILINE,
    )
    assert [(int(t), int(b)) for t, b, *_ in rows] == [(1, 1), (1, 2)], output
    for *_, ours, dense, ratio in rows:
        # times are printed to 0.1 ms, so allow for that in the recomputed ratio
        expected = float(ours) / float(dense)
        assert abs(float(ratio) - expected) <= 0.05 * expected + 0.01, output
    assert re.search(r'^InternImage-T\s+[\d.]+\s+InternImage-T / ConvNeXt-T: [\d.]+x$',
                     output, flags=re.MULTILINE), output  # fmt: skip
    assert re.search(r'^ConvNeXt-T\s+[\d.]+$', output, flags=re.MULTILINE)
    profile = output.split('## InternImage-T inference profile')[-1]
    assert 'aten::addmm' in profile and 'Self CPU time total' in profile, output


def test_latency_ratios_compare_compiled_with_compiled():
    """Every model against eager ConvNeXt-T, and compiled InternImage-T also against compiled
    ConvNeXt-T (the honest denominator for a compiled model)."""
    module = load_tool('benchmark_model.py')
    labels = ['InternImage-T', 'ConvNeXt-T', 'InternImage-T compiled', 'ConvNeXt-T compiled']
    assert module.latency_ratios(labels, 'ConvNeXt-T') == [
        ('InternImage-T', 'ConvNeXt-T'),
        ('InternImage-T compiled', 'ConvNeXt-T'),
        ('ConvNeXt-T compiled', 'ConvNeXt-T'),
        ('InternImage-T compiled', 'ConvNeXt-T compiled'),
    ]
    assert module.latency_ratios(labels[:2], 'ConvNeXt-T') == [('InternImage-T', 'ConvNeXt-T')]


def test_cpu_report_rejects_cuda():
    result = run_rejected('--cpu-report', '--device', 'cuda')
    assert result.returncode == 2 and '--cpu-report runs on --device cpu' in result.stderr


@pytest.mark.slow
def test_cpu_report_bfloat16():
    """--cpu-report --dtype bfloat16: bfloat16 latency table and the logits of both models
    within 2e-2 (relative to the largest float32 logit) of their float32 originals."""
    output = run_tool(
        BENCHMARK, '--cpu-report', '--dtype', 'bfloat16', '--no-compile', '--no-train',
        '--size', '32', '--iters', '1', '--warmup', '0', '--report-batches', '1',
        '--report-threads', '1',
    )  # fmt: skip
    assert '## inference latency, ms (bfloat16' in output, output
    errors = dict(re.findall(r'^(InternImage-T|ConvNeXt-T)\s+([\d.e+-]+)$', output, re.MULTILINE))
    assert set(errors) == {'InternImage-T', 'ConvNeXt-T'}, output
    assert all(float(error) < 2e-2 for error in errors.values()), errors
    assert '## training step' not in output
    assert 'InternImage-T inference profile (bfloat16)' in output
