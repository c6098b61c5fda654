# UperNet + InternImage-L (ImageNet-22K pre-trained) on Cityscapes, 512x1024 crops, 160k
# iterations. Official recipe (upernet_internimage_l_512x1024_160k_cityscapes): the T
# recipe with AdamW lr 2e-5, layer decay 0.94 over 37 layers, drop path 0.4, offset scale
# 2.0, gradient clipping at max norm 0.1.
# Target (official, single scale): mIoU 83.68.
_base_ = [
    '../_base_/models/upernet_internimage-l.py',
    'mmseg::_base_/datasets/cityscapes.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/internimage-seg_160k.py',
]

custom_imports = dict(imports=['internimage'], allow_failed_imports=False)

model = dict(data_preprocessor=dict(size=(512, 1024)))
optim_wrapper = dict(
    optimizer=dict(lr=2e-5),
    paramwise_cfg=dict(layer_decay_rate=0.94),
    clip_grad=dict(max_norm=0.1, norm_type=2),
)
