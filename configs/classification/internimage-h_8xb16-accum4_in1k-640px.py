# InternImage-H, pre-trained on large joint data, fine-tuned on ImageNet-1K at 640
# (official without_lr_decay/internimage_h_22kto1k_640: 89.6 top-1, 1.08B params). Recipe
# as for L (batch 512, lr 2e-5, one lr for all parameters, EMA 0.9999 per optimizer
# step); the head is the CLIP-style attention-pooling head fed by the last two stages.
# Batch as the official run: 8 GPUs x 16 images x 4 accumulated steps. mmengine's
# auto_scale_lr counts images per step, not per update, so it stays off: keep the total
# at 512 (or scale the lr by hand).
_base_ = './internimage-l_8xb64_in1k-384px.py'

img_size = 640
model = dict(
    backbone=dict(arch='h', drop_path_rate=0.2, out_indices=(2, 3)),
    head=dict(
        _delete_=True,
        type='InternImageAttnPoolClsHead',
        num_classes=1000,
        in_channels=2560,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.3, mode='original'),
        cal_acc=False,
    ),
)

# L's fine-tune pipelines at 640 px (RandomResizedCrop; ResizeEdge, CenterCrop).
train_pipeline = _base_.train_pipeline
test_pipeline = _base_.test_pipeline
train_pipeline[1].scale = test_pipeline[1].scale = test_pipeline[2].crop_size = img_size
train_dataloader = dict(batch_size=16, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(accumulative_counts=4)
auto_scale_lr = dict(enable=False)
