"""Multi-process training and evaluation on CPU, through torchrun and mmengine's Runner.

``tools/dist_train.sh`` / ``tools/dist_test.sh`` start 2 gloo processes (no GPU, no
config edit). The single-process run is the reference: 2 processes x batch b must
follow 1 process x batch 2b (same samples per step: the samplers deal the shuffled
indices round-robin), both ranks must end with identical parameters, and distributed
evaluation must gather every sample from both ranks.
"""

import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from .dist_support import ROOT, make_cls_data, write_cls_config

PYTHON = sys.executable
ITERS = 4
# Mean of the two ranks' losses vs the single-process loss: the same samples, so only
# float summation order differs.
LOSS_TOL = 1e-5
# Parameters after ITERS AdamW steps: the all-reduced gradient sums in another order
# (~1e-7 relative), and Adam's normalisation (g / sqrt(v)) turns a rounding difference
# in a near-zero gradient entry into an update difference of up to ~lr (3e-3).
PARAM_TOL = 1e-3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run(*args: str, env: dict = None) -> str:
    full_env = {**os.environ, 'PYTHONWARNINGS': 'ignore', 'PYTHON': PYTHON, **(env or {})}
    proc = subprocess.run(
        list(args), cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=300
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    return output


def dist_tool(script: str, *args: str) -> str:
    return run(f'tools/{script}', *args, env={'PORT': str(free_port())})


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """2 processes x batch 2 and 1 process x batch 4, ITERS iterations each."""
    base = tmp_path_factory.mktemp('dist')
    data = make_cls_data(base / 'data')
    dump = (
        "test_evaluator = [dict(type='Accuracy', topk=(1,)), "
        "dict(type='DumpResults', out_file_path='unset.pkl')]"
    )
    two = write_cls_config(
        base / 'two.py', data, batch_size=2, max_iters=ITERS, random_flip=False, extra=dump
    )
    one = write_cls_config(
        base / 'one.py', data, batch_size=4, max_iters=ITERS, random_flip=False, extra=dump
    )
    dist_tool('dist_train.sh', str(two), '2', '--work-dir', str(base / 'two'))
    run(PYTHON, 'tools/train.py', str(one), '--work-dir', str(base / 'one'))
    return dict(base=base, two=two, one=one, data=data)


def _dump(work_dir: Path, rank: int) -> dict:
    return torch.load(work_dir / f'rank{rank}.pth', weights_only=True)


@pytest.mark.slow
def test_both_ranks_end_with_identical_parameters(runs):
    rank0, rank1 = (_dump(runs['base'] / 'two', rank) for rank in (0, 1))
    assert rank0['iter'] == rank1['iter'] == ITERS
    # The ranks saw different samples ...
    assert rank0['losses'] != rank1['losses']
    # ... but DDP keeps their parameters equal, bit for bit.
    for name, value in rank0['params'].items():
        assert torch.equal(value, rank1['params'][name]), name


@pytest.mark.slow
def test_two_processes_match_one_process_with_double_batch(runs):
    rank0, rank1 = (_dump(runs['base'] / 'two', rank) for rank in (0, 1))
    single = _dump(runs['base'] / 'one', 0)
    assert len(single['losses']) == ITERS
    for step, (loss0, loss1, reference) in enumerate(
        zip(rank0['losses'], rank1['losses'], single['losses'])
    ):
        assert abs((loss0 + loss1) / 2 - reference) <= LOSS_TOL, step
    # It learns: the loss falls over the few steps (lr warms up to 3e-3).
    assert single['losses'][-1] < single['losses'][0]
    initial = single['initial']
    moved = 0
    for name, value in single['params'].items():
        if value.is_floating_point():
            diff = (rank0['params'][name] - value).abs().max().item()
            assert diff <= PARAM_TOL, f'{name}: {diff}'
            moved += not torch.equal(initial[name], value)
    assert moved > len(single['params']) // 2, 'training left most parameters unchanged'


@pytest.mark.slow
def test_distributed_evaluation_gathers_both_ranks(runs):
    """tools/dist_test.sh on 2 processes = tools/test.py on 1: the same metric, and the
    dumped predictions cover every validation image exactly once."""
    checkpoint = str(runs['base'] / 'two' / f'iter_{ITERS}.pth')
    dumps = {}
    metrics = {}
    for name, launch in (('two', 'dist'), ('one', 'single')):
        out_file = runs['base'] / f'preds_{name}.pkl'
        options = ['--cfg-options', f'test_evaluator.1.out_file_path={out_file}']
        work = ['--work-dir', str(runs['base'] / f'test_{name}')]
        if launch == 'dist':
            output = dist_tool('dist_test.sh', str(runs['two']), checkpoint, '2', *work, *options)
        else:
            output = run(PYTHON, 'tools/test.py', str(runs['two']), checkpoint, *work, *options)
        metrics[name] = [line for line in output.splitlines() if 'accuracy/top1:' in line][-1]
        with open(out_file, 'rb') as file:
            dumps[name] = pickle.load(file)
    val_images = sorted(str(path) for path in (runs['data'] / 'val').rglob('*.png'))
    assert len(val_images) == 12
    for name, predictions in dumps.items():
        assert sorted(sample['img_path'] for sample in predictions) == val_images, name
    single = {sample['img_path']: sample['pred_score'] for sample in dumps['one']}
    for sample in dumps['two']:
        torch.testing.assert_close(sample['pred_score'], single[sample['img_path']])
    top1 = {name: line.split('accuracy/top1:')[1].split()[0] for name, line in metrics.items()}
    assert top1['two'] == top1['one']


# FlexibleRunner with a plain AdamW (the layer-decay constructor groups parameters by
# shape, which FSDP flattens): DDPStrategy is the reference for FSDPStrategy.
FLEXIBLE = """
runner_type = 'FlexibleRunner'
strategy = dict(type={strategy!r})
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper', optimizer=dict(type='AdamW', lr=3e-3, weight_decay=0.05))
"""


@pytest.fixture(scope='module')
def strategy_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp('strategies')
    data = make_cls_data(base / 'data')
    dumps = {}
    for strategy in ('DDPStrategy', 'FSDPStrategy'):
        config = write_cls_config(
            base / f'{strategy}.py',
            data,
            batch_size=2,
            max_iters=ITERS,
            random_flip=False,
            extra=FLEXIBLE.format(strategy=strategy),
        )
        work_dir = base / strategy
        dist_tool('dist_train.sh', str(config), '2', '--work-dir', str(work_dir))
        dumps[strategy] = [_dump(work_dir, rank) for rank in (0, 1)]
    return dumps


@pytest.mark.slow
def test_fsdp_shards_and_trains_like_ddp(strategy_runs):
    """FSDP (gloo, CPU) follows DDP step for step, and each rank holds about half of the
    parameters and optimizer state."""
    ddp, fsdp = strategy_runs['DDPStrategy'], strategy_runs['FSDPStrategy']
    for rank in (0, 1):
        for step, (reference, sharded) in enumerate(zip(ddp[rank]['losses'], fsdp[rank]['losses'])):
            assert abs(reference - sharded) <= LOSS_TOL, (rank, step)
        for name, value in ddp[rank]['params'].items():
            if value.is_floating_point():
                diff = (fsdp[rank]['params'][name] - value).abs().max().item()
                assert diff <= PARAM_TOL, f'{name}: {diff}'
    full = ddp[0]['memory']['state_bytes']
    for rank in (0, 1):
        shard = fsdp[rank]['memory']['state_bytes']
        assert 0.45 * full <= shard <= 0.55 * full, (rank, shard, full)
    print(
        'bytes of parameters + optimizer state per rank: DDP',
        [dump['memory']['state_bytes'] for dump in ddp],
        'FSDP',
        [dump['memory']['state_bytes'] for dump in fsdp],
        '; peak RSS per rank: DDP',
        [dump['memory']['max_rss_bytes'] for dump in ddp],
        'FSDP',
        [dump['memory']['max_rss_bytes'] for dump in fsdp],
    )
