# InternImage-H fine-tuning with sharded parameters, gradients and optimizer state
# (mmengine FlexibleRunner + FSDP) and activation checkpointing (with_cp, from the base
# recipe):
#   tools/dist_train.sh configs/classification/internimage-h_fsdp-cp_in1k-640px.py 8
# Same recipe as internimage-h_8xb16-accum4_in1k-640px.py except what FSDP requires:
# - the optimizer is built on 1-D shards, so "no weight decay on 1-D parameters and
#   biases" is chosen by module type (norms) and name (biases, layer-scale gammas, the
#   DCNv3 centre-feature-scale and attention-pool q/k/v biases) instead of by ndim;
# - gradients are clipped by the norm over all ranks' shards (InternImageFSDPStrategy);
# - no EMA hook (mmengine's EMA keeps an unsharded copy of the model on every rank).
_base_ = './internimage-h_8xb16-accum4_in1k-640px.py'

runner_type = 'FlexibleRunner'
strategy = dict(
    # FSDPStrategy, clipping by the norm of the whole gradient (all ranks' shards).
    type='InternImageFSDPStrategy',
    # Names and module types of the original parameters stay visible to the optimizer
    # constructor and to checkpoints.
    model_wrapper=dict(use_orig_params=True),
)
optim_wrapper = dict(
    paramwise_cfg=dict(
        _delete_=True,
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={'gamma': dict(decay_mult=0.0), '_bias': dict(decay_mult=0.0)},
    ),
)
custom_hooks = []
