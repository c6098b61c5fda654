# Mask2Former + InternImage-H (joint 427M -> ImageNet-22K weights) on COCO-Stuff 164k,
# 896x896 crops, 80k iterations. Official recipe (mask2former_internimage_h_896_80k_cocostuff164k):
# 16 GPUs x 1 image, AdamW lr 2e-5, layer decay 0.95 over the 50 layers, no gradient
# clipping, the 1024-wide head with 200 queries, drop path 0.5; whole-image inference at
# short side 896. It is also the pre-training of the ADE20K and COCO-Stuff 10k recipes.
# Target (official, single scale): mIoU 52.6.
_base_ = [
    '../_base_/models/mask2former_internimage-h_1024.py',
    '../_base_/datasets/coco-stuff164k_896x896.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/internimage-seg_80k.py',
]

custom_imports = dict(imports=['internimage', 'mmdet.models'], allow_failed_imports=False)

num_classes = 171
model = dict(
    data_preprocessor=dict(size=(896, 896)),
    decode_head=dict(
        num_classes=num_classes, loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])
    ),
)
# 16 GPUs x 1 image, as the official run; the lr is for that total of 16.
train_dataloader = dict(batch_size=1)
optim_wrapper = dict(optimizer=dict(lr=2e-5), paramwise_cfg=dict(layer_decay_rate=0.95))
