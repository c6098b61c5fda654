# FlashInternImage-S (DCNv4), ImageNet-1K from scratch at 224
# (official flash_intern_image_s_1k_224: 84.4 top-1, 50M params). Recipe of InternImage-S.
_base_ = './internimage-s_8xb128_in1k.py'

model = dict(backbone=dict(type='FlashInternImage'))
