# Mask2Former + InternImage-H (joint 427M -> ImageNet-22K weights) on Mapillary Vistas
# v1.2 (training + validation splits, labels merged into the 19 Cityscapes classes),
# 896x896 crops, 80k iterations, validated on Cityscapes val: the pre-training of the
# Cityscapes Mask2Former-H. Official recipe (mask2former_internimage_h_896x896_80k_mapillary):
# 16 GPUs x 2 images, AdamW lr 2e-5, layer decay 0.95, gradient clipping at max norm 0.1,
# the official model base's 256-wide head with 100 queries, drop path 0.5; sliding-window
# inference (896x896 windows, stride 512).
# Target: the official model zoo publishes no mIoU for this pre-training stage.
_base_ = [
    '../_base_/models/mask2former_internimage-h.py',
    '../_base_/datasets/mapillary2cityscapes_896x896.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/internimage-seg_80k.py',
]

custom_imports = dict(
    imports=['internimage', 'internimage.datasets.transforms', 'mmdet.models'],
    allow_failed_imports=False,
)

crop_size = (896, 896)
model = dict(
    data_preprocessor=dict(size=crop_size),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(512, 512)),
)
# 16 GPUs x 2 images, as the official run; the lr is for that total of 32.
optim_wrapper = dict(
    optimizer=dict(lr=2e-5),
    paramwise_cfg=dict(layer_decay_rate=0.95),
    clip_grad=dict(max_norm=0.1, norm_type=2),
)
