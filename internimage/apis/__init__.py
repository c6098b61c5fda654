"""What the tools share: config loading, runner building and single-image inference.

The top layer of the package: it may import everything below (models, engine,
checkpoint); nothing below imports it.
"""

from .inference import build_inferencer, render_prediction
from .runner import (
    TASK_SCOPES,
    add_common_args,
    build_runner,
    config_parser,
    enable_amp,
    enable_resume,
    enable_show_dir,
    load_config,
    task_scope,
)

__all__ = [
    'TASK_SCOPES',
    'add_common_args',
    'build_runner',
    'config_parser',
    'enable_amp',
    'enable_resume',
    'enable_show_dir',
    'load_config',
    'task_scope',
    'build_inferencer',
    'render_prediction',
]
