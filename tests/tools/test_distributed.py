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
from mmengine.config import Config

from internimage.apis import check_fsdp_optimizer, replace_sync_bn, setup_distributed
from internimage.datasets import QuickstartSpec, make_quickstart_data

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
# The loss on the whole training set (12 images, one batch) after the ITERS steps, relative
# to before: measured 0.68; exactly 1 with lr = 0.
FIXED_BATCH_LOSS_RATIO = 0.9


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
    errors = [line for line in output.splitlines() if 'Error' in line or 'signal' in line.lower()]
    assert proc.returncode == 0, '\n'.join(errors[-20:]) + '\n...\n' + output[-3000:]
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
        "dict(type='DumpResults', out_file_path='unset.pkl')]\n"
        "custom_hooks = [dict(type='DumpRankStateHook', fixed_batch_loss=True)]"
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
    # It learns: the loss on one fixed batch (the whole training set, before and after
    # the ITERS steps; lr warms up to 3e-3) falls, here and on each rank.
    for run in (single, rank0, rank1):
        before, after = run['fixed_batch_losses']
        assert after < FIXED_BATCH_LOSS_RATIO * before, (before, after)
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


# The shipped H/G FSDP recipe, run on the tiny classifier: its strategy (FSDP wrapper
# settings) and its optimizer's parameter-wise rules (no decay for norms, biases and
# layer-scale gammas, chosen by module type and name: FSDP hands the optimizer 1-D
# shards). DDPStrategy with the same optimizer settings is the reference. Weight decay 0.5:
# a LayerNorm weight decayed by mistake moves by ~3e-3 over the steps, above PARAM_TOL.
H_FSDP_CONFIG = 'configs/classification/internimage-h_fsdp-cp_in1k-640px.py'
FLEXIBLE = """
runner_type = 'FlexibleRunner'
strategy = {strategy!r}
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper', optimizer=dict(type='AdamW', lr=3e-3, weight_decay=0.5),
    paramwise_cfg={paramwise!r}, clip_grad={clip!r})
"""


def _h_fsdp_recipe() -> Config:
    cfg = Config.fromfile(str(ROOT / H_FSDP_CONFIG))
    assert cfg.model.backbone.with_cp is True
    assert cfg.runner_type == 'FlexibleRunner' and cfg.strategy.type == 'InternImageFSDPStrategy'
    check_fsdp_optimizer(cfg)  # the shipped recipe passes the guard
    return cfg


@pytest.fixture(scope='module')
def strategy_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp('strategies')
    data = make_cls_data(base / 'data')
    recipe = _h_fsdp_recipe()
    paramwise = recipe.optim_wrapper.paramwise_cfg.to_dict()
    clip = recipe.optim_wrapper.clip_grad.to_dict()
    strategies = {
        'DDPStrategy': dict(type='DDPStrategy'),
        'FSDP': recipe.strategy.to_dict(),
    }
    dumps = {}
    for strategy, settings in strategies.items():
        config = write_cls_config(
            base / f'{strategy}.py',
            data,
            batch_size=2,
            max_iters=ITERS,
            random_flip=False,
            # The recipe recomputes each block in backward (activation checkpointing).
            with_cp=recipe.model.backbone.with_cp,
            extra=FLEXIBLE.format(strategy=settings, paramwise=paramwise, clip=clip),
        )
        work_dir = base / strategy
        dist_tool('dist_train.sh', str(config), '2', '--work-dir', str(work_dir))
        dumps[strategy] = [_dump(work_dir, rank) for rank in (0, 1)]
    return dumps


@pytest.mark.slow
def test_fsdp_shards_and_trains_like_ddp(strategy_runs):
    """FSDP (gloo, CPU) follows DDP step for step, and each rank holds about half of the
    parameters and optimizer state."""
    ddp, fsdp = strategy_runs['DDPStrategy'], strategy_runs['FSDP']
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


@pytest.mark.slow
def test_fsdp_clips_by_the_global_gradient_norm(strategy_runs):
    """The norm the recipe clips by is the whole gradient's, as DDP's full gradients give
    it, on both ranks (each rank's own shards would give about 1/sqrt(2) of it)."""
    ddp, fsdp = strategy_runs['DDPStrategy'], strategy_runs['FSDP']
    for rank in (0, 1):
        assert len(fsdp[rank]['grad_norms']) == ITERS
        assert fsdp[rank]['grad_norms'] == pytest.approx(ddp[rank]['grad_norms'], rel=1e-4)


def _loader_options(root: str, batch_size: int = 1) -> list:
    options = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options += [
            f'{loader}.dataset.data_root={root}',
            f'{loader}.num_workers=0',
            f'{loader}.persistent_workers=False',
            f'{loader}.batch_size={batch_size}',
        ]
    return options


def _seg_options(data: Path) -> list:
    return [
        'train_cfg.max_iters=1',
        'train_cfg.val_interval=1',
        'default_hooks.checkpoint.interval=1',
        'model.data_preprocessor.size=(64,64)',
        # The full segmentation configs' SyncBN: a CPU run must turn it into BN.
        'model.decode_head.norm_cfg.type=SyncBN',
        'model.auxiliary_head.norm_cfg.type=SyncBN',
        # 2 per process: the pyramid pooling's 1x1 BN needs more than one value.
        *_loader_options(str(data / 'seg'), batch_size=2),
    ]


def _det_options(data: Path) -> list:
    annotations = f'{data}/coco/annotations/instances_val.json'
    return [
        'train_cfg.max_epochs=1',
        'train_cfg.val_interval=1',
        'model.test_cfg.rcnn.score_thr=0.0',
        f'val_evaluator.ann_file={annotations}',
        f'test_evaluator.ann_file={annotations}',
        *_loader_options(f'{data}/coco/'),
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    'config, options, metric',
    [
        ('configs/quickstart/upernet_internimage-tiny_quickstart.py', _seg_options, 'mIoU:'),
        ('configs/quickstart/mask-rcnn_internimage-tiny_quickstart.py', _det_options, 'bbox_mAP:'),
    ],
    ids=['upernet', 'mask-rcnn'],
)
def test_quickstart_task_trains_and_tests_on_two_processes(config, options, metric, tmp_path):
    """The segmentation and detection quick starts through dist_train.sh / dist_test.sh
    (one iteration on 2 processes), without a config edit."""
    spec = QuickstartSpec(num_train=2, num_val=2, image_size=64, cls_num_train=1, cls_num_val=1)
    data = make_quickstart_data(tmp_path / 'data', spec)
    work_dir = tmp_path / 'work'
    args = ['--work-dir', str(work_dir), '--cfg-options', *options(data)]
    output = dist_tool('dist_train.sh', config, '2', *args)
    if 'upernet' in config:
        assert 'SyncBN -> BN' in output
        assert 'model.decode_head.norm_cfg' in output
    assert metric in output
    checkpoint = (work_dir / 'last_checkpoint').read_text().strip()
    args[1] = str(tmp_path / 'test')
    output = dist_tool('dist_test.sh', config, checkpoint, '2', *args)
    assert metric in output


@pytest.mark.parametrize('strategy', ['FSDPStrategy', 'InternImageFSDPStrategy'])
@pytest.mark.parametrize(
    'optim_wrapper',
    [
        dict(constructor='InternImageLayerDecayOptimizerConstructor'),
        dict(paramwise_cfg=dict(flat_decay_mult=0.0)),
    ],
)
def test_fsdp_refuses_shape_based_weight_decay(optim_wrapper, strategy):
    cfg = Config(
        dict(
            runner_type='FlexibleRunner',
            strategy=dict(type=strategy),
            optim_wrapper=optim_wrapper,
        )
    )
    with pytest.raises(ValueError, match='1-D'):
        check_fsdp_optimizer(cfg)


def test_sync_bn_becomes_bn_and_paths_are_reported():
    model = dict(
        decode_head=dict(norm_cfg=dict(type='SyncBN', requires_grad=True)),
        heads=[dict(norm_cfg=dict(type='MMSyncBN')), dict(norm_cfg=dict(type='LN'))],
    )
    changed = replace_sync_bn(model)
    assert changed == ['model.decode_head.norm_cfg', 'model.heads[0].norm_cfg']
    assert model['decode_head']['norm_cfg'] == dict(type='BN', requires_grad=True)
    assert model['heads'][1]['norm_cfg'] == dict(type='LN')


def test_cpu_launch_errors_name_the_problem(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)  # also on a GPU machine
    cfg = Config(dict(launcher='slurm', model=dict()))
    with pytest.raises(ValueError, match='--launcher slurm needs CUDA'):
        setup_distributed(cfg)
    for name in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(name, raising=False)
    cfg = Config(dict(launcher='pytorch', model=dict()))
    with pytest.raises(RuntimeError, match="torchrun's environment, missing"):
        setup_distributed(cfg)
    cfg = Config(dict(launcher='pytorch', model=dict(), sync_bn='torch'))
    with pytest.raises(ValueError, match='sync_bn'):
        setup_distributed(cfg)
    assert setup_distributed(Config(dict(launcher='none'))) == 'none'
