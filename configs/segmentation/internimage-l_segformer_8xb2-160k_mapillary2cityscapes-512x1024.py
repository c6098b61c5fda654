# SegFormer head + InternImage-L on Cityscapes (fine train + coarse train_extra), 512x1024
# crops, 160k iterations, fine-tuned from the Mapillary model. Official recipe
# (segformer_internimage_l_512x1024_160k_mapillary2cityscapes): 8 GPUs x 2 images, AdamW
# lr 2e-5, layer decay 0.94, gradient clipping at max norm 0.1, drop path 0.4; whole-image
# inference at 2048x1024.
# load_from: the official Mapillary model converted to this layout, first (HF is
# https://huggingface.co/OpenGVLab/InternImage/resolve/main)
#   python tools/convert_checkpoint.py --task segmentation --num-classes 19 \
#       $HF/segformer_internimage_l_512x1024_80k_mapillary.pth \
#       checkpoints/segformer_internimage_l_512x1024_80k_mapillary.pth
# Target (official, single scale): mIoU 85.16.
_base_ = [
    '../_base_/models/segformer_internimage-l.py',
    '../_base_/datasets/cityscapes-extra_512x1024.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/internimage-seg_160k.py',
]

custom_imports = dict(imports=['internimage'], allow_failed_imports=False)

load_from = 'checkpoints/segformer_internimage_l_512x1024_80k_mapillary.pth'
model = dict(data_preprocessor=dict(size=(512, 1024)), backbone=dict(init_cfg=None))
optim_wrapper = dict(
    optimizer=dict(lr=2e-5),
    paramwise_cfg=dict(layer_decay_rate=0.94),
    clip_grad=dict(max_norm=0.1, norm_type=2),
)
