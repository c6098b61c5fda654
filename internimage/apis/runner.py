"""What tools/train.py, tools/test.py and tools/image_demo.py share.

One pair of tools serves classification (mmpretrain), detection (mmdet) and
semantic segmentation (mmseg): the task is read from the config's
``default_scope`` (set by the upstream ``_base_`` it inherits), so the tools
only differ from upstream ones in being task-agnostic.
"""

import argparse
import datetime
import gc
import logging
import os
import os.path as osp
import tempfile
from typing import Any, List, Optional

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.logging import print_log
from mmengine.registry import MODEL_WRAPPERS, RUNNERS
from mmengine.runner import Runner
from mmengine.runner.checkpoint import find_latest_checkpoint
from torch.distributed.fsdp import FullyShardedDataParallel
from torch.nn.parallel import DistributedDataParallel

from ..checkpoint import add_allow_partial_argument, check_checkpoint_file
from ..engine import RandomStateHook, StopOnDivergenceHook

__all__ = [
    'TASK_SCOPES',
    'config_parser',
    'add_common_args',
    'load_config',
    'task_scope',
    'add_random_state_hook',
    'add_divergence_hook',
    'check_work_dir',
    'enable_amp',
    'enable_amp_test',
    'enable_resume',
    'enable_show_dir',
    'enable_tta',
    'check_checkpoint_file',
    'check_fsdp_optimizer',
    'replace_sync_bn',
    'setup_distributed',
    'teardown_distributed',
    'build_runner',
]

#: SyncBN norm types: torch's SyncBatchNorm ('SyncBN') and mmcv's CUDA op ('MMSyncBN').
SYNC_BN_TYPES = ('SyncBN', 'MMSyncBN')

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
    """Arguments every tool takes: work dir, config overrides, launcher, --allow-partial."""
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
    add_allow_partial_argument(parser)
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
    add_random_state_hook(cfg)
    add_divergence_hook(cfg)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg


def add_random_state_hook(cfg: Config) -> None:
    """Add :class:`~internimage.engine.RandomStateHook` to ``custom_hooks`` (once), so
    that checkpoints carry the random generators and ``--resume`` continues them."""
    _add_custom_hook(cfg, RandomStateHook)


def add_divergence_hook(cfg: Config) -> None:
    """Add :class:`~internimage.engine.StopOnDivergenceHook` to ``custom_hooks`` (once), so
    that a NaN/inf loss or gradient norm stops training, naming the iteration and the last
    good checkpoint, whatever the config (every shipped one goes through here)."""
    _add_custom_hook(cfg, StopOnDivergenceHook)


def _add_custom_hook(cfg: Config, hook: type) -> None:
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(entry.get('type') in (hook.__name__, hook) for entry in hooks):
        hooks.append(dict(type=hook.__name__))
    cfg.custom_hooks = hooks


def check_work_dir(work_dir: str) -> None:
    """Raise an error naming ``work_dir`` unless it can be created and written, so that a
    run does not fail at its first log line or, worse, its first checkpoint."""
    try:
        os.makedirs(work_dir, exist_ok=True)
        with tempfile.TemporaryFile(dir=work_dir):
            pass
    except OSError as error:
        raise PermissionError(
            f'work dir {work_dir} cannot be written ({error.strerror or error}); '
            'choose another with --work-dir'
        ) from error


def enable_amp(cfg: Config) -> None:
    """Switch the optimizer wrapper to automatic mixed precision.

    With CUDA: mmengine's ``AmpOptimWrapper`` (float16 autocast, dynamic loss scaling).
    Without: :class:`~internimage.engine.CPUBFloat16AmpOptimWrapper` (bfloat16 autocast on
    the CPU, no loss scaling), since mmengine's wrapper refuses CPU-only machines.
    """
    wrapper = cfg.optim_wrapper
    amp_types = ('AmpOptimWrapper', 'CPUBFloat16AmpOptimWrapper')
    if wrapper.get('type') in amp_types:
        return
    if wrapper.get('type', 'OptimWrapper') != 'OptimWrapper':
        raise ValueError(
            f'--amp only applies to optim_wrapper.type="OptimWrapper", got {wrapper.get("type")!r}'
        )
    if torch.cuda.is_available():
        wrapper.type = 'AmpOptimWrapper'
        wrapper.setdefault('loss_scale', 'dynamic')
    else:
        wrapper.type = 'CPUBFloat16AmpOptimWrapper'


def enable_amp_test(cfg: Config) -> None:
    """Test with the backbone and neck in bfloat16 (float16 on CUDA): adds
    :class:`~internimage.engine.FeatureExtractorAutocastHook` to ``custom_hooks``.

    Not mmengine's ``test_cfg.fp16`` (autocast over the whole test step): on the CPU mmcv's
    ``RoIAlign`` has no bfloat16 kernel and its ``nms`` wants float32, so mmdet models stop;
    here the heads and post-processing stay float32 (see ``autocast_feature_extractor``).
    """
    dtype = 'float16' if torch.cuda.is_available() else 'bfloat16'
    hooks = [
        h for h in cfg.get('custom_hooks') or [] if h.get('type') != 'FeatureExtractorAutocastHook'
    ]
    cfg.custom_hooks = hooks + [dict(type='FeatureExtractorAutocastHook', dtype=dtype)]


def enable_resume(cfg: Config, resume: Optional[str]) -> None:
    """``--resume`` (latest checkpoint in work dir) or ``--resume PATH``.

    The checkpoint to resume from is resolved and checked here: a truncated or
    corrupted file raises an error naming it instead of failing deep in the Runner.
    ``--resume`` without a path and no checkpoint in the work dir starts from scratch,
    as mmengine does (the first launch of an auto-resuming job).
    """
    if resume is None:
        return
    if resume == 'auto':
        work_dir = cfg.get('work_dir')
        latest = find_latest_checkpoint(work_dir) if work_dir and osp.isdir(work_dir) else None
        if latest is None:
            print_log(
                f'--resume: no checkpoint in {work_dir}, training from scratch',
                logger='current',
            )
        else:
            check_checkpoint_file(latest, 'latest checkpoint (--resume)')
    else:
        check_checkpoint_file(resume, '--resume checkpoint')
    cfg.resume = True
    cfg.load_from = None if resume == 'auto' else resume


def enable_tta(cfg: Config) -> None:
    """Test with the config's ``tta_pipeline`` and wrap its model in ``tta_model`` (as
    mmseg's and mmdet's own test tools do).

    Args:
        cfg (Config): the loaded config; changed in place.
    """
    missing = [key for key in ('tta_model', 'tta_pipeline') if key not in cfg]
    if missing:
        raise ValueError(f'--tta: the config defines no {" / ".join(missing)}')
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model


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


def replace_sync_bn(node: Any, path: str = 'model') -> List[str]:
    """Turn every ``norm_cfg`` of a SyncBN type under ``node`` into plain ``BN``, in place.

    torch's SyncBatchNorm refuses CPU tensors and mmcv's is a CUDA op, so a CPU
    (gloo) run computes batch statistics per process instead. Returns the config
    paths changed, for the log.
    """
    changed = []
    if isinstance(node, dict):
        if node.get('type') in SYNC_BN_TYPES:
            node['type'] = 'BN'
            changed.append(path)
        for key, value in node.items():
            changed += replace_sync_bn(value, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            changed += replace_sync_bn(value, f'{path}[{index}]')
    return changed


#: mmengine strategies that wrap the model, and the wrapper each uses by default.
STRATEGY_WRAPPERS = {
    'DDPStrategy': 'MMDistributedDataParallel',
    'FSDPStrategy': 'MMFullyShardedDataParallel',
    'InternImageFSDPStrategy': 'MMFullyShardedDataParallel',
}


def _cpu_wrapper_cfg(wrapper: Optional[dict], default_type: str, cfg: Config) -> dict:
    """A model wrapper config that keeps the (CPU) module off CUDA.

    mmengine passes ``device_ids=[LOCAL_RANK]`` to DDP wrappers and
    ``device_id=LOCAL_RANK`` to FSDP wrappers as defaults, which name CUDA device
    LOCAL_RANK. DDP keeps a CPU module where it is with ``device_ids=None``; FSDP needs
    ``device_id='cpu'`` (with ``None`` it looks for an accelerator and raises).
    """
    if wrapper is None:
        wrapper = ConfigDict(type=default_type)
        if default_type == 'MMDistributedDataParallel':
            # What the Runner's own default DDP wrapper uses.
            wrapper.update(
                broadcast_buffers=False,
                find_unused_parameters=cfg.get('find_unused_parameters', False),
            )
    wrapper.setdefault('type', default_type)
    wrapper_type = MODEL_WRAPPERS.get(wrapper['type'])
    if wrapper_type is None:
        raise KeyError(f'model wrapper type {wrapper["type"]!r} is not registered')
    if issubclass(wrapper_type, DistributedDataParallel):
        wrapper['device_ids'] = None
    elif issubclass(wrapper_type, FullyShardedDataParallel):
        wrapper['device_id'] = 'cpu'
    return wrapper


def check_fsdp_optimizer(cfg: Config) -> None:
    """Refuse parameter-wise settings that FSDP would silently break.

    FSDP builds the optimizer after sharding: every parameter it sees is a 1-D shard,
    so rules keyed on ``param.ndim`` (mmengine's ``flat_decay_mult``, and the
    InternImage layer-decay constructor's no-decay rule) would take weight decay off
    every weight. Raise instead; the FSDP configs use name/module-type rules.
    """
    strategy = cfg.get('strategy') if cfg.get('runner_type') == 'FlexibleRunner' else None
    if strategy is None or strategy.get('type') not in ('FSDPStrategy', 'InternImageFSDPStrategy'):
        return
    wrapper = cfg.get('optim_wrapper', {})
    problems = []
    constructor = wrapper.get('constructor')
    if constructor in _LAYER_DECAY_CONSTRUCTORS:
        problems.append(f'optim_wrapper.constructor={constructor}')
    if (wrapper.get('paramwise_cfg') or {}).get('flat_decay_mult') is not None:
        problems.append('optim_wrapper.paramwise_cfg.flat_decay_mult')
    if problems:
        raise ValueError(
            f'FSDPStrategy shards parameters into 1-D pieces before the optimizer is built, '
            f'so {" and ".join(problems)} would treat every weight as a 1-D (no-decay) '
            'parameter; use norm_decay_mult / bias_decay_mult / custom_keys instead '
            '(see configs/classification/internimage-h_fsdp-cp_in1k-640px.py)'
        )


# Their rules (no decay by ndim, lr by layer) need whole parameters.
_LAYER_DECAY_CONSTRUCTORS = (
    'InternImageLayerDecayOptimizerConstructor',
    'InternImageClsLayerDecayOptimizerConstructor',
)


def setup_distributed(cfg: Config) -> str:
    """Start the process group of a launched (torchrun) run; returns its backend.

    With CUDA this leaves everything to mmengine (``init_dist``, nccl by default).
    Without CUDA, mmengine's ``init_dist`` would call ``torch.cuda.set_device``,
    so the gloo process group is started here from torchrun's ``env://`` variables
    (the Runner skips its own initialisation when one exists), the model is wrapped
    without CUDA device ids, and SyncBN layers become BN (see :func:`replace_sync_bn`).
    The config file itself needs no change.
    """
    check_fsdp_optimizer(cfg)
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none':
        return 'none'
    dist_cfg = cfg.get('env_cfg', {}).get('dist_cfg', {})
    if torch.cuda.is_available():
        return dist_cfg.get('backend', 'nccl')
    if launcher != 'pytorch':
        raise ValueError(
            f'--launcher {launcher} needs CUDA; without a GPU launch with torchrun '
            '(tools/dist_train.sh / dist_test.sh, i.e. --launcher pytorch)'
        )
    if cfg.get('sync_bn') is not None:
        raise ValueError(
            f'sync_bn={cfg.sync_bn!r} converts BN to SyncBN, which needs CUDA; '
            'unset it (--cfg-options sync_bn=None) for CPU runs'
        )
    torchrun_vars = ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
    missing = [name for name in torchrun_vars if name not in os.environ]
    if missing:
        raise RuntimeError(
            f"--launcher pytorch expects torchrun's environment, missing {missing}: "
            'start the tool with tools/dist_train.sh or python -m torch.distributed.run'
        )
    if not torch_dist.is_initialized():
        timeout = datetime.timedelta(seconds=dist_cfg.get('timeout', 1800))
        torch_dist.init_process_group(backend='gloo', init_method='env://', timeout=timeout)
    backend = torch_dist.get_backend()
    strategy = cfg.get('strategy') if cfg.get('runner_type') == 'FlexibleRunner' else None
    if strategy is None:
        default_type = 'MMDistributedDataParallel'
        cfg.model_wrapper_cfg = _cpu_wrapper_cfg(cfg.get('model_wrapper_cfg'), default_type, cfg)
    elif strategy.get('type') in STRATEGY_WRAPPERS:
        default_type = STRATEGY_WRAPPERS[strategy['type']]
        strategy.model_wrapper = _cpu_wrapper_cfg(strategy.get('model_wrapper'), default_type, cfg)
    changed = replace_sync_bn(cfg.model)
    if changed and torch_dist.get_rank() == 0:
        print_log(
            f'{backend} (CPU) run: SyncBN -> BN (per-process batch statistics) at '
            + ', '.join(changed),
            logger='current',
            level=logging.WARNING,
        )
    return backend


def teardown_distributed() -> None:
    """End the process group, if any, once the Runner is done (call it after dropping
    the last reference to the Runner).

    mmengine leaves it open. A gloo group that is only freed at interpreter exit can
    abort its process after the work is done ("terminate called without an active
    exception", SIGABRT from torchrun): the DDP/FSDP wrapper keeps it alive past
    ``destroy_process_group``, so the Runner's reference cycles are collected first.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        gc.collect()
        torch_dist.barrier()
        torch_dist.destroy_process_group()
        gc.collect()


def build_runner(cfg: Config) -> Runner:
    """The config's runner (``runner_type`` if given, else mmengine's), after starting
    the process group of a distributed launch (:func:`setup_distributed`), once the work
    dir is known to be writable (:func:`check_work_dir`)."""
    check_work_dir(cfg.work_dir)
    setup_distributed(cfg)
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)
