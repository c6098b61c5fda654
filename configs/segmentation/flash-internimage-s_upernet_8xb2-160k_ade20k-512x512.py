# UperNet + FlashInternImage-S (DCNv4) on ADE20K, 512x512 crops, 160k iterations.
# Official upernet_flash_internimage_s_512_160k_ade20k: the InternImage-S recipe with drop
# path 0.3, offset scale 1.0, gradient checkpointing and the FlashInternImage-S weights.
# Target (official, single scale): mIoU 50.6.
_base_ = './internimage-s_upernet_8xb2-160k_ade20k-512x512.py'

pretrained = 'https://huggingface.co/OpenGVLab/DCNv4/resolve/main/flash_intern_image_s_1k_224.pth'

model = dict(
    backbone=dict(
        type='FlashInternImage',
        offset_scale=1.0,
        with_cp=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained),
    )
)
