#!/usr/bin/env bash
# torchrun launcher shared by dist_train.sh and dist_test.sh:
#   tools/dist_launch.sh SCRIPT "NAME ... GPUS" ARGUMENTS...
# The second argument names SCRIPT's positional arguments, the GPU count last: the
# arguments before GPUS go to SCRIPT, then everything after it, then --launcher pytorch.
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR (and PORT) on every node.
set -euo pipefail
SCRIPT=$1
read -r -a NAMES <<< "$2"
shift 2
COUNT=${#NAMES[@]}
if [ $# -lt "$COUNT" ]; then
    echo "usage: tools/dist_${SCRIPT%.py}.sh ${NAMES[*]} [tools/$SCRIPT arguments]" >&2
    exit 2
fi
POSITIONAL=("${@:1:COUNT-1}")
GPUS=${!COUNT}
shift "$COUNT"
TOOLS=$(cd "$(dirname "$0")" && pwd)
PYTHONPATH="$TOOLS/..${PYTHONPATH:+:$PYTHONPATH}" \
exec "${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
    --nproc_per_node="$GPUS" \
    "$TOOLS/$SCRIPT" "${POSITIONAL[@]}" "$@" --launcher pytorch
