# UperNet + InternImage-T on ADE20K, 512x512 crops, 160k iterations.
# Official recipe (upernet_internimage_t_512_160k_ade20k): 8 GPUs x 2 images, AdamW lr
# 6e-5, betas (0.9, 0.999), wd 0.05, layer decay 1.0 over 30 layers, 1500-iteration
# linear warm-up then linear (power 1) decay to 0, drop path 0.2, layer scale 1.0;
# whole-image inference at short side 512 (sides rounded to a multiple of 32).
# Target (official, single scale): mIoU 47.9.
_base_ = [
    '../_base_/models/upernet_internimage.py',
    '../_base_/datasets/ade20k_512x512.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/internimage-seg_160k.py',
]

custom_imports = dict(imports=['internimage'], allow_failed_imports=False)

num_classes = 150

model = dict(
    data_preprocessor=dict(size=(512, 512)),
    decode_head=dict(num_classes=num_classes),
    auxiliary_head=dict(num_classes=num_classes),
)
train_dataloader = dict(batch_size=2)
