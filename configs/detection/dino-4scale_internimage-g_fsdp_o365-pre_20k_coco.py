# DINO + InternImage-G with FSDP: the G recipe with parameters, gradients and AdamW
# moments sharded over the GPUs (49 GB unsharded, see configs/README.md "Memory"), for
# GPUs where the data-parallel G config does not fit. FSDP builds the optimizer on 1-D
# shards, so the layer-wise lr decay (keyed on whole parameters) cannot apply: one lr for
# the backbone, no weight decay on norms and biases (by module type), and the official
# 0.001x lr (no decay) of the deformable attention offsets by name.
#   tools/dist_train.sh configs/detection/dino-4scale_internimage-g_fsdp_o365-pre_20k_coco.py 8
_base_ = './dino-4scale_internimage-g_o365-pre_20k_coco.py'

runner_type = 'FlexibleRunner'
strategy = dict(type='FSDPStrategy', model_wrapper=dict(use_orig_params=True))
optim_wrapper = dict(
    constructor='DefaultOptimWrapperConstructor',
    paramwise_cfg=dict(
        _delete_=True,
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={'sampling_offsets': dict(lr_mult=1e-3, decay_mult=0.0)},
    ),
)
