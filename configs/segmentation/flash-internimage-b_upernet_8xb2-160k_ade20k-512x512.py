# UperNet + FlashInternImage-B (DCNv4) on ADE20K, 512x512 crops, 160k iterations.
# Official upernet_flash_internimage_b_512_160k_ade20k: the InternImage-B recipe with drop
# path 0.3, offset scale 0.5 and the FlashInternImage-B weights (no gradient checkpointing).
# Target (official, single scale): mIoU 52.0.
_base_ = './internimage-b_upernet_8xb2-160k_ade20k-512x512.py'

pretrained = 'https://huggingface.co/OpenGVLab/DCNv4/resolve/main/flash_intern_image_b_1k_224.pth'

model = dict(
    backbone=dict(
        type='FlashInternImage',
        drop_path_rate=0.3,
        offset_scale=0.5,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained),
    )
)
