"""Crash and resume, and run-to-run determinism, on CPU through tools/train.py.

A run is SIGKILLed right after its iteration-4 checkpoint is written, then restarted
with ``tools/train.py CONFIG --resume``; it must end bit-identical to an uninterrupted
run of the same config: weights, optimizer state, scheduler, counters and metric. The
model drops paths at random (stochastic depth, torch's generator) and the pipeline flips
images (numpy's), so this only holds if the random generators resume too
(:class:`internimage.engine.RandomStateHook`; mmengine alone re-seeds them).
"""

import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from internimage.apis import check_checkpoint_file
from internimage.checkpoint import register_checkpoint_safe_globals

from .dist_support import ROOT, make_cls_data, write_cls_config

ITERS = 6
KILL_AT = 4


def train(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, 'PYTHONWARNINGS': 'ignore'}
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check:
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc


def load(path: Path) -> dict:
    # `import internimage` registered the allow-list; a safe_globals context would remove
    # it from the process on exit.
    register_checkpoint_safe_globals()
    return torch.load(path, map_location='cpu', weights_only=True)


def top1(output: str) -> str:
    lines = [line for line in output.splitlines() if 'accuracy/top1:' in line]
    assert lines, output[-3000:]
    return lines[-1].split('accuracy/top1:')[1].split()[0]


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp('resume')
    data = make_cls_data(base / 'data')
    options = dict(
        batch_size=4, max_iters=ITERS, random_flip=True, checkpoint_interval=2, drop_path_rate=0.2
    )
    config = write_cls_config(base / 'cls.py', data, **options)
    crash_config = write_cls_config(
        base / 'crash.py',
        data,
        **options,
        extra=f"custom_hooks = [dict(type='KillAtIterHook', iteration={KILL_AT})]",
    )
    full = train(str(config), '--work-dir', str(base / 'full'))
    crashed = train(str(crash_config), '--work-dir', str(base / 'crashed'), check=False)
    return dict(base=base, config=config, full=full, crashed=crashed)


@pytest.mark.slow
def test_two_runs_are_bit_identical(runs):
    """Determinism: the killed run is an independent run of the same recipe; up to its
    crash its checkpoints equal the uninterrupted run's bit for bit."""
    for name in ('iter_2.pth', f'iter_{KILL_AT}.pth'):
        first, second = load(runs['base'] / 'full' / name), load(runs['base'] / 'crashed' / name)
        for key, value in first['state_dict'].items():
            assert torch.equal(value, second['state_dict'][key]), f'{name}: {key}'
    # It learned something between the two checkpoints.
    early = load(runs['base'] / 'full' / 'iter_2.pth')['state_dict']
    late = load(runs['base'] / 'full' / f'iter_{KILL_AT}.pth')['state_dict']
    assert sum(not torch.equal(early[key], late[key]) for key in early) > len(early) // 2


@pytest.mark.slow
def test_sigkill_then_resume_ends_bit_identical(runs):
    crashed = runs['crashed']
    assert crashed.returncode == -signal.SIGKILL, (crashed.stdout + crashed.stderr)[-3000:]
    work_dir = runs['base'] / 'crashed'
    assert (work_dir / f'iter_{KILL_AT}.pth').is_file()
    assert not (work_dir / f'iter_{ITERS}.pth').exists()
    resumed = train(str(runs['config']), '--work-dir', str(work_dir), '--resume')
    output = resumed.stdout + resumed.stderr
    assert f'resumed epoch: 0, iter: {KILL_AT}' in output
    full = load(runs['base'] / 'full' / f'iter_{ITERS}.pth')
    after = load(work_dir / f'iter_{ITERS}.pth')
    assert after['meta']['iter'] == full['meta']['iter'] == ITERS
    for key, value in full['state_dict'].items():
        assert torch.equal(value, after['state_dict'][key]), key
    for param_id, state in full['optimizer']['state'].items():
        for key, value in state.items():
            assert torch.equal(value, after['optimizer']['state'][param_id][key]), key
    assert full['param_schedulers'] == after['param_schedulers']
    assert full['random_state']['numpy'] == after['random_state']['numpy']
    assert top1(output) == top1(runs['full'].stdout + runs['full'].stderr)
    # The per-iteration losses after the resume are the uninterrupted run's.
    full_losses = torch.load(runs['base'] / 'full' / 'rank0.pth', weights_only=True)['losses']
    resumed_losses = torch.load(work_dir / 'rank0.pth', weights_only=True)['losses']
    assert resumed_losses == full_losses[KILL_AT:]


def _truncated_copy(source: Path, target: Path) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


@pytest.mark.slow
def test_truncated_checkpoint_is_refused_by_name(runs, tmp_path):
    truncated = _truncated_copy(runs['base'] / 'full' / 'iter_2.pth', tmp_path / 'cut.pth')
    proc = train(
        str(runs['config']),
        '--work-dir',
        str(tmp_path / 'w'),
        '--resume',
        str(truncated),
        check=False,
    )
    assert proc.returncode != 0
    assert f'{truncated} is not a readable torch checkpoint' in proc.stderr
    assert not (tmp_path / 'w' / 'iter_2.pth').exists(), 'it must not have started training'


@pytest.mark.slow
def test_auto_resume_refuses_a_truncated_latest_checkpoint(runs, tmp_path):
    work_dir = tmp_path / 'w'
    work_dir.mkdir()
    truncated = _truncated_copy(runs['base'] / 'full' / 'iter_2.pth', work_dir / 'iter_2.pth')
    (work_dir / 'last_checkpoint').write_text(str(truncated))
    proc = train(str(runs['config']), '--work-dir', str(work_dir), '--resume', check=False)
    assert proc.returncode != 0
    assert f'latest checkpoint (--resume) {truncated}' in proc.stderr


def test_flipped_byte_fails_the_crc_check(tmp_path):
    path = tmp_path / 'weights.pth'
    torch.save({'weight': torch.arange(4096, dtype=torch.float32)}, path)
    check_checkpoint_file(str(path))  # intact
    with zipfile.ZipFile(path) as archive:
        member = next(info for info in archive.infolist() if info.file_size >= 4096 * 4)
    data = bytearray(path.read_bytes())
    data[member.header_offset + 200 + member.file_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f'{path} is corrupted: CRC mismatch'):
        check_checkpoint_file(str(path))


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        check_checkpoint_file(str(tmp_path / 'nope.pth'), '--resume checkpoint')
