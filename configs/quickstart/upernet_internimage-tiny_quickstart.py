# Quick start: UperNet + a tiny InternImage on the synthetic shapes label maps
# (python tools/make_quickstart_data.py), trained from scratch on a CPU in a
# few minutes, then evaluated with mIoU.
_base_ = [
    'mmseg::_base_/models/upernet_r50.py',
    '../_base_/datasets/quickstart_seg.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/quickstart_seg.py',
]

custom_imports = dict(imports=['internimage'], allow_failed_imports=False)

num_classes = 4  # background, circle, square, triangle
image_size = (128, 128)
# Stage channels 32, 64, 128, 256; 16 channels per DCNv3 group everywhere.
arch = dict(channels=32, depths=[1, 1, 2, 1], groups=[2, 4, 8, 16])
# Plain BN: single-process CPU training has no process group to sync over.
norm_cfg = dict(type='BN', requires_grad=True)

model = dict(
    pretrained=None,
    data_preprocessor=dict(size=image_size),
    backbone=dict(
        _delete_=True,
        type='InternImage',
        arch=arch,
        drop_path_rate=0.0,
        out_indices=(0, 1, 2, 3),
        init_cfg=None,
    ),
    decode_head=dict(
        in_channels=[arch['channels'] * 2**i for i in range(4)],
        channels=64,
        num_classes=num_classes,
        norm_cfg=norm_cfg,
    ),
    auxiliary_head=dict(
        in_channels=arch['channels'] * 4, channels=32, num_classes=num_classes, norm_cfg=norm_cfg
    ),
    test_cfg=dict(mode='whole'),
)
log_processor = dict(by_epoch=False, window_size=20)
randomness = dict(seed=0)
