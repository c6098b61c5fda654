# Mask2Former + InternImage-H on COCO-Stuff 10k, 512x512 crops, 40k iterations, fine-tuned
# from the COCO-Stuff 164k model. Official recipe
# (mask2former_internimage_h_512_40k_cocostuff164k_to_10k):
# 16 GPUs x 1 image, AdamW lr 1e-5, layer decay 0.95, no gradient clipping, the 1024-wide
# head with 200 queries, drop path 0.5; whole-image inference at short side 512.
# load_from: the official COCO-Stuff 164k model converted to this layout (see
# ./internimage-h_mask2former_16xb1-80k_cocostuff2ade20k-896x896.py).
# Target (official, single scale): mIoU 59.2.
_base_ = [
    '../_base_/models/mask2former_internimage-h_1024.py',
    '../_base_/datasets/coco-stuff10k_512x512.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/internimage-seg_40k.py',
]

custom_imports = dict(imports=['internimage', 'mmdet.models'], allow_failed_imports=False)

load_from = 'checkpoints/mask2former_internimage_h_896_80k_cocostuff164k.pth'
num_classes = 171
model = dict(
    backbone=dict(init_cfg=None),  # the whole model comes from load_from
    data_preprocessor=dict(size=(512, 512)),
    decode_head=dict(
        num_classes=num_classes, loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])
    ),
)
# 16 GPUs x 1 image, as the official run; the lr is for that total of 16.
train_dataloader = dict(batch_size=1)
optim_wrapper = dict(optimizer=dict(lr=1e-5), paramwise_cfg=dict(layer_decay_rate=0.95))
