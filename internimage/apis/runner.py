"""What tools/train.py, tools/test.py and tools/image_demo.py share.

One pair of tools serves classification (mmpretrain), detection (mmdet) and
semantic segmentation (mmseg): the task is read from the config's
``default_scope`` (set by the upstream ``_base_`` it inherits), so the tools
only differ from upstream ones in being task-agnostic.
"""

import argparse
import os
import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

__all__ = [
    'TASK_SCOPES',
    'config_parser',
    'add_common_args',
    'load_config',
    'task_scope',
    'enable_amp',
    'enable_resume',
    'enable_show_dir',
    'build_runner',
]

#: default_scope -> task name, for messages.
TASK_SCOPES = {
    'mmpretrain': 'classification',
    'mmdet': 'detection',
    'mmseg': 'segmentation',
}


def config_parser(doc: str) -> argparse.ArgumentParser:
    """A tool's parser: its description is the first line of ``doc``, its first
    positional argument the config file."""
    parser = argparse.ArgumentParser(description=doc.split('\n')[0])
    parser.add_argument('config', help='config file path')
    return parser


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Arguments every tool takes: work dir, config overrides, launcher."""
    parser.add_argument(
        '--work-dir', help='directory for logs and checkpoints (default: ./work_dirs/<config name>)'
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, e.g. train_cfg.max_iters=10 "model.backbone.init_cfg=None"',
    )
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher for distributed runs',
    )
    # torchrun passes the rank through LOCAL_RANK; older launchers pass
    # --local_rank / --local-rank on the command line.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def task_scope(cfg: Config) -> str:
    """The registry scope of a config: 'mmpretrain', 'mmdet' or 'mmseg'."""
    scope = cfg.get('default_scope')
    if scope not in TASK_SCOPES:
        raise ValueError(
            f'config default_scope must be one of {sorted(TASK_SCOPES)} '
            f'(normally inherited from an mmdet::/mmseg::/mmpretrain:: '
            f'_base_), got {scope!r}'
        )
    return scope


def load_config(args: argparse.Namespace) -> Config:
    """Read ``args.config``, apply ``--cfg-options``, set work dir/launcher.

    (Importing this package registered the backbone, heads and constructor, and
    allow-listed the types mmengine's checkpoints carry, so test/resume/``load_from``
    work with ``torch.load(weights_only=True)``.)
    """
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file not found: {args.config}')
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    task_scope(cfg)  # fail early on a config for another stack
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg


def enable_amp(cfg: Config) -> None:
    """Switch the optimizer wrapper to automatic mixed precision."""
    if not torch.cuda.is_available():
        raise RuntimeError(
            "--amp needs a CUDA device (mmengine's "
            'AmpOptimWrapper is CUDA/NPU/MLU only); none found'
        )
    wrapper = cfg.optim_wrapper
    if wrapper.get('type') == 'AmpOptimWrapper':
        return
    if wrapper.get('type', 'OptimWrapper') != 'OptimWrapper':
        raise ValueError(
            f'--amp only applies to optim_wrapper.type="OptimWrapper", got {wrapper.get("type")!r}'
        )
    wrapper.type = 'AmpOptimWrapper'
    wrapper.setdefault('loss_scale', 'dynamic')


def enable_resume(cfg: Config, resume: Optional[str]) -> None:
    """``--resume`` (latest checkpoint in work dir) or ``--resume PATH``."""
    if resume is None:
        return
    if resume != 'auto' and not osp.isfile(resume):
        raise FileNotFoundError(f'--resume checkpoint not found: {resume}')
    cfg.resume = True
    cfg.load_from = None if resume == 'auto' else resume


def enable_show_dir(cfg: Config, show_dir: str) -> None:
    """Save rendered test predictions under ``show_dir``.

    Uses each library's own visualization hook (``default_hooks.
    visualization``): mmdet's ``DetVisualizationHook`` (``test_out_dir``),
    mmseg's ``SegVisualizationHook`` (the visualizer's ``save_dir``) and
    mmpretrain's ``VisualizationHook`` (``out_dir``).
    """
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise ValueError(
            '--show-dir needs default_hooks.visualization in the '
            'config (inherited from the upstream runtime)'
        )
    show_dir = osp.abspath(show_dir)  # the hooks join relative paths
    scope = task_scope(cfg)
    hook.interval = 1
    if scope == 'mmdet':
        hook.draw = True
        hook.test_out_dir = show_dir
    elif scope == 'mmseg':
        hook.draw = True
        cfg.visualizer.save_dir = show_dir
    else:
        hook.enable = True
        hook.out_dir = show_dir


def build_runner(cfg: Config) -> Runner:
    """The config's runner (``runner_type`` if given, else mmengine's)."""
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)
