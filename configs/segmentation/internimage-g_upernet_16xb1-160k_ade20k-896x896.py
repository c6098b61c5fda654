# UperNet + InternImage-G (joint pre-trained -> ImageNet-22K) on ADE20K, 896x896 crops,
# 160k iterations. Official recipe (upernet_internimage_g_896_160k_ade20k): the H recipe
# with the G backbone (56 layers) and gradient checkpointing.
# Target: the official model zoo publishes no UperNet-G result.
_base_ = './internimage-h_upernet_16xb1-160k_ade20k-896x896.py'

pretrained = (
    'https://huggingface.co/OpenGVLab/InternImage/resolve/main/internimage_g_pretrainto22k_384.pth'
)

model = dict(
    backbone=dict(arch='g', with_cp=True, init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[512, 1024, 2048, 4096]),
    auxiliary_head=dict(in_channels=2048),
)
