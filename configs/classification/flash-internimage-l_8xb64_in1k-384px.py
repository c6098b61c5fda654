# FlashInternImage-L (DCNv4), ImageNet-22K pre-trained, fine-tuned on ImageNet-1K at 384
# (official flash_intern_image_l_22kto1k_384: 88.1 top-1, 223M params).
# The official DCNv4 yaml is InternImage-L's fine-tune with the layer-wise lr decay (0.9,
# 0.1x lr on the DCNv4 offset/mask projections); the DCNv4 release has no flat-lr
# variant. Set model.backbone.init_cfg / load_from to the 22K checkpoint.
_base_ = './internimage-l_layer-decay_8xb64_in1k-384px.py'

model = dict(backbone=dict(type='FlashInternImage'))
