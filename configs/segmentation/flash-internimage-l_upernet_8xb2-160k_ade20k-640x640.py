# UperNet + FlashInternImage-L (DCNv4) on ADE20K, 640x640 crops, 160k iterations.
# Official upernet_flash_internimage_l_640_160k_ade20k: the InternImage-L recipe (lr 2e-5,
# layer decay 0.94, drop path 0.4, offset scale 2.0) from the FlashInternImage-L 22K
# weights, with gradient clipping at norm 0.1.
# Target (official, single scale): mIoU 55.6.
_base_ = './internimage-l_upernet_8xb2-160k_ade20k-640x640.py'

pretrained = 'https://huggingface.co/OpenGVLab/DCNv4/resolve/main/flash_intern_image_l_22k_384.pth'

model = dict(
    backbone=dict(type='FlashInternImage', init_cfg=dict(type='Pretrained', checkpoint=pretrained))
)
optim_wrapper = dict(clip_grad=dict(max_norm=0.1, norm_type=2))
