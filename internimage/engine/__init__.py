"""Runner helpers shared by the tools (train / test / demo)."""

from .checkpoint import checkpoint_safe_globals, register_checkpoint_safe_globals
from .demo import render_prediction
from .launch import (
    TASK_SCOPES,
    add_common_args,
    build_runner,
    enable_amp,
    enable_resume,
    enable_show_dir,
    load_config,
    task_scope,
)

__all__ = [
    'checkpoint_safe_globals',
    'register_checkpoint_safe_globals',
    'TASK_SCOPES',
    'add_common_args',
    'build_runner',
    'enable_amp',
    'enable_resume',
    'enable_show_dir',
    'load_config',
    'task_scope',
    'render_prediction',
]
