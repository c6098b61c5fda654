"""Training that diverges stops with an error naming the iteration and the last good
checkpoint, which is kept; every shipped config gets the hook through the tools; a work
dir that cannot be written is refused before training starts."""

from pathlib import Path

import pytest
import torch

from internimage import apis
from internimage.checkpoint import register_checkpoint_safe_globals
from internimage.engine import StopOnDivergenceHook, TrainingDivergedError
from tests.tool_runs import load_tool

from .dist_support import make_cls_data, write_cls_config

ROOT = Path(__file__).resolve().parents[2]
GOOD_ITERS = 2


@pytest.mark.slow
def test_absurd_learning_rate_stops_with_the_last_good_checkpoint(tmp_path):
    """Ordinary iterations, then the learning rate is multiplied by 1e30: the weights or
    the next loss go non-finite. Stopped, named, and the last checkpoint written before
    it is intact. (Without the hook this run ends with exit 0 and NaN weights.)"""
    data = make_cls_data(tmp_path / 'data')
    config = write_cls_config(
        tmp_path / 'cls.py',
        data,
        batch_size=4,
        max_iters=6,
        random_flip=False,
        checkpoint_interval=1,
        extra=(
            'custom_hooks = []\n'
            'param_scheduler = [dict(type="MultiStepLR", by_epoch=False, '
            f'milestones=[{GOOD_ITERS}], gamma=1e30)]'
        ),
    )
    work_dir = tmp_path / 'work'
    with pytest.raises(TrainingDivergedError) as error:
        load_tool('train.py').main([str(config), '--work-dir', str(work_dir)])
    iteration = error.value.iteration
    assert iteration > GOOD_ITERS
    last = work_dir / f'iter_{iteration - 1}.pth'
    assert f'training diverged at iteration {iteration}: ' in str(error.value)
    assert f'the last good checkpoint is {last} (kept' in str(error.value)
    assert not (work_dir / f'iter_{iteration}.pth').exists(), 'no diverged checkpoint'
    register_checkpoint_safe_globals()
    weights = torch.load(last, map_location='cpu', weights_only=True)['state_dict']
    assert all(v.isfinite().all() for v in weights.values() if v.is_floating_point())


class _Hub:
    def __init__(self, last=None, grad_norm=None):
        from mmengine.logging import HistoryBuffer

        self.info = {'last_ckpt': last}
        self.log_scalars = {}
        if grad_norm is not None:
            self.log_scalars['train/grad_norm'] = HistoryBuffer([grad_norm], [1])

    def get_info(self, key):
        return self.info.get(key)


class _Runner:
    """What the hook reads of a Runner."""

    def __init__(self, iteration=6, last=None, grad_norm=None, amp=False, weight=1.0):
        self.iter = iteration
        self.message_hub = _Hub(last, grad_norm)
        self.model = torch.nn.Linear(2, 1)
        torch.nn.init.constant_(self.model.weight, weight)
        self.optim_wrapper = type('AmpOptimWrapper' if amp else 'OptimWrapper', (), {})()
        if amp:
            self.optim_wrapper.loss_scaler = object()


@pytest.mark.parametrize(
    'outputs, grad_norm, amp, message',
    [
        ({'loss': torch.tensor(float('nan'))}, None, False, 'loss = nan'),
        (
            {'loss': torch.tensor(1.0), 'loss_cls': torch.tensor(float('inf'))},
            None,
            False,
            'loss_cls = inf',
        ),
        ({'loss': torch.tensor(1.0)}, float('nan'), False, 'grad_norm = nan'),
        ({'loss': torch.tensor(1.0)}, float('inf'), True, None),  # AMP skips that step
        ({'loss': torch.tensor(1.0), 'accuracy': float('nan')}, 2.0, False, None),
    ],
)
def test_hook_checks_losses_and_grad_norm(outputs, grad_norm, amp, message):
    hook = StopOnDivergenceHook()
    runner = _Runner(iteration=6, last='work/iter_6.pth', grad_norm=grad_norm, amp=amp)
    hook.before_train(runner)
    if message is None:
        hook.after_train_iter(runner, 0, outputs=outputs)
        return
    with pytest.raises(TrainingDivergedError) as error:
        hook.after_train_iter(runner, 0, outputs=outputs)
    assert f'training diverged at iteration 7: {message}' in str(error.value)
    assert 'the last good checkpoint is work/iter_6.pth' in str(error.value)


@pytest.mark.parametrize('value', [float('nan'), float('inf'), -float('inf')])
def test_hook_checks_the_weights(value):
    hook = StopOnDivergenceHook()
    runner = _Runner(iteration=6, weight=value)
    with pytest.raises(TrainingDivergedError, match='iteration 7: 1 weight tensor.*weight'):
        hook.after_train_iter(runner, 0, outputs={'loss': torch.tensor(1.0)})
    with pytest.raises(TrainingDivergedError, match='iteration 6: 1 weight tensor'):
        hook.after_train_epoch(runner)
    hook.after_train_epoch(_Runner(weight=3e38))  # large but finite


def test_hook_refuses_to_save_non_finite_weights():
    hook = StopOnDivergenceHook()
    runner = _Runner(last='work/iter_4.pth')
    hook.before_save_checkpoint(runner, {'state_dict': {'w': torch.ones(2)}})  # iter_4: good
    runner.message_hub.info['last_ckpt'] = 'work/iter_5.pth'  # CheckpointHook names it first
    checkpoint = {'meta': {'iter': 5}, 'state_dict': {'w': torch.tensor([1.0, float('nan')])}}
    with pytest.raises(TrainingDivergedError) as error:
        hook.before_save_checkpoint(runner, checkpoint)
    assert 'iteration 5: 1 weight tensor(s) hold NaN or inf (e.g. w)' in str(error.value)
    assert 'the last good checkpoint is work/iter_4.pth' in str(error.value)


def test_hook_interval_is_checked():
    with pytest.raises(ValueError, match='StopOnDivergenceHook interval must be an int >= 1'):
        StopOnDivergenceHook(interval=0)


def test_load_config_adds_the_hook_once(tmp_path):
    config = tmp_path / 'c.py'
    config.write_text(
        "default_scope = 'mmpretrain'\n"
        "custom_hooks = [dict(type='StopOnDivergenceHook', interval=2)]\n"
    )
    parser = apis.config_parser('x')
    apis.add_common_args(parser)
    cfg = apis.load_config(parser.parse_args([str(config)]))
    assert [h for h in cfg.custom_hooks if h['type'] == 'StopOnDivergenceHook'] == [
        dict(type='StopOnDivergenceHook', interval=2)
    ]


def test_unwritable_work_dir_is_refused_before_training(tmp_path):
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    work_dir = blocker / 'work'  # a directory cannot live inside a file (even for root)
    config = tmp_path / 'cls.py'
    config.write_text(
        f'_base_ = {str(ROOT / "configs/quickstart/internimage-tiny_quickstart_cls.py")!r}\n'
    )
    with pytest.raises(PermissionError, match=f'work dir {work_dir} cannot be written'):
        load_tool('train.py').main([str(config), '--work-dir', str(work_dir)])
    apis.check_work_dir(str(tmp_path / 'new' / 'work'))  # created when missing
