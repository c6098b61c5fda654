# Mask2Former + InternImage-H on Cityscapes (fine train + coarse train_extra), 1024x1024
# crops, 80k iterations, fine-tuned from the Mapillary model. Official recipe
# (mask2former_internimage_h_1024x1024_80k_mapillary2cityscapes): 8 GPUs x 2 images,
# AdamW lr 1e-5, layer decay 0.95, gradient clipping at max norm 0.1, the 256-wide head
# with 100 queries, drop path 0.5; sliding-window inference (1024x1024, stride 512).
# load_from: the official Mapillary model converted to this layout, first (HF is
# https://huggingface.co/OpenGVLab/InternImage/resolve/main)
#   python tools/convert_checkpoint.py --task segmentation \
#       $HF/mask2former_internimage_h_896x896_80k_mapillary.pth \
#       checkpoints/mask2former_internimage_h_896x896_80k_mapillary.pth
# (or train ./internimage-h_mask2former_16xb2-80k_mapillary-896x896.py).
# Target (official, single scale): mIoU 86.37.
_base_ = [
    '../_base_/models/mask2former_internimage-h.py',
    '../_base_/datasets/cityscapes-extra_1024x1024.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/internimage-seg_80k.py',
]

custom_imports = dict(imports=['internimage', 'mmdet.models'], allow_failed_imports=False)

load_from = 'checkpoints/mask2former_internimage_h_896x896_80k_mapillary.pth'
crop_size = (1024, 1024)
model = dict(
    backbone=dict(init_cfg=None),  # the whole model comes from load_from
    data_preprocessor=dict(size=crop_size),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(512, 512)),
)
optim_wrapper = dict(
    optimizer=dict(lr=1e-5),
    paramwise_cfg=dict(layer_decay_rate=0.95),
    clip_grad=dict(max_norm=0.1, norm_type=2),
)
