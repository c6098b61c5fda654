"""Every shipped config, run through the tools, stops on divergence
(:class:`internimage.engine.StopOnDivergenceHook`, added by ``apis.load_config``)."""

from pathlib import Path

import pytest
from mmengine.registry import HOOKS

from internimage import apis
from internimage.engine import StopOnDivergenceHook

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(str(p.relative_to(ROOT)) for p in (ROOT / 'configs').rglob('*.py'))
SHIPPED = [p for p in SHIPPED if '_base_' not in Path(p).parts]


@pytest.mark.slow
@pytest.mark.parametrize('config', SHIPPED)
def test_every_shipped_config_runs_with_the_hook(config, read_config):
    cfg = read_config(config)
    apis.add_divergence_hook(cfg)  # what apis.load_config does for every tool run
    hooks = [
        HOOKS.build(dict(hook))
        for hook in cfg.custom_hooks
        if hook['type'] == 'StopOnDivergenceHook'
    ]
    assert len(hooks) == 1 and isinstance(hooks[0], StopOnDivergenceHook)
