#!/usr/bin/env bash
# Multi-GPU evaluation on one node:
#   tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR (and PORT) on every node.
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT GPUS [tools/test.py arguments]" >&2
    exit 2
fi
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
shift 3
exec "$(dirname "$0")/dist_launch.sh" "$GPUS" test.py "$CONFIG" "$CHECKPOINT" "$@"
