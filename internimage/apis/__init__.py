"""What the tools share: config loading, runner building and single-image inference.

The top layer of the package: it may import everything below (models, engine,
checkpoint); nothing below imports it.
"""

from .inference import build_inferencer, render_prediction
from .runner import (
    TASK_SCOPES,
    add_common_args,
    add_divergence_hook,
    add_random_state_hook,
    build_runner,
    check_checkpoint_file,
    check_fsdp_optimizer,
    check_work_dir,
    config_parser,
    enable_amp,
    enable_amp_test,
    enable_resume,
    enable_show_dir,
    enable_tta,
    load_config,
    replace_sync_bn,
    setup_distributed,
    task_scope,
    teardown_distributed,
)

__all__ = [
    'TASK_SCOPES',
    'add_common_args',
    'add_random_state_hook',
    'add_divergence_hook',
    'check_work_dir',
    'build_runner',
    'check_checkpoint_file',
    'check_fsdp_optimizer',
    'replace_sync_bn',
    'setup_distributed',
    'teardown_distributed',
    'config_parser',
    'enable_amp',
    'enable_amp_test',
    'enable_resume',
    'enable_show_dir',
    'enable_tta',
    'load_config',
    'task_scope',
    'build_inferencer',
    'render_prediction',
]
