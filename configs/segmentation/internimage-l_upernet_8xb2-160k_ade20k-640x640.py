# UperNet + InternImage-L (ImageNet-22K pre-trained) on ADE20K, 640x640 crops,
# 160k iterations. Official recipe (upernet_internimage_l_640_160k_ade20k): the T recipe
# with AdamW lr 2e-5, layer decay 0.94 over 37 layers, drop path 0.4, offset scale 2.0,
# gradient clipping at max norm 0.1; whole-image inference at short side 640.
# Target (official, single scale): mIoU 53.9.
_base_ = [
    '../_base_/models/upernet_internimage-l.py',
    '../_base_/datasets/ade20k_640x640.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/internimage-seg_160k.py',
]

custom_imports = dict(imports=['internimage'], allow_failed_imports=False)

num_classes = 150
model = dict(
    data_preprocessor=dict(size=(640, 640)),
    decode_head=dict(num_classes=num_classes),
    auxiliary_head=dict(num_classes=num_classes),
)
train_dataloader = dict(batch_size=2)
optim_wrapper = dict(
    optimizer=dict(lr=2e-5),
    paramwise_cfg=dict(layer_decay_rate=0.94),
    clip_grad=dict(max_norm=0.1, norm_type=2),
)
