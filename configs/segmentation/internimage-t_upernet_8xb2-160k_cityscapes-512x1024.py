# UperNet + InternImage-T on Cityscapes (fine annotations), 512x1024 crops, 160k iterations.
# Official recipe (upernet_internimage_t_512x1024_160k_cityscapes): 8 GPUs x 2 images,
# AdamW lr 6e-5, betas (0.9, 0.999), wd 0.05, layer decay 1.0 over 30 layers, 1500-iteration
# linear warm-up then linear decay to 0, drop path 0.2, layer scale 1.0; mmseg's Cityscapes
# pipeline (short side 1024 x 0.5-2.0, crop 512x1024); whole-image inference at 2048x1024.
# The heads predict the 19 Cityscapes classes (the official config leaves ADE20K's 150).
# Target (official, single scale): mIoU 82.58.
_base_ = [
    '../_base_/models/upernet_internimage.py',
    'mmseg::_base_/datasets/cityscapes.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/internimage-seg_160k.py',
]

custom_imports = dict(imports=['internimage'], allow_failed_imports=False)


model = dict(
    data_preprocessor=dict(size=(512, 1024)),
)
