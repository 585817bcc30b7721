#!/usr/bin/env bash
# Arguments and environment as mmdet3d 1.4's script. GPUS is the number of tasks (processes); GPUS_PER_NODE=0
# asks for no GPU (no --gres, for partitions without GPUs): the tasks then run on CPUs over gloo, with
# TASKS_PER_NODE tasks per node (default: all GPUS tasks on one node).
# Usage: [GPUS=8] [GPUS_PER_NODE=8] [TASKS_PER_NODE=...] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#        tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]
set -x

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
if [ "${GPUS_PER_NODE}" -gt 0 ]; then
    GRES="--gres=gpu:${GPUS_PER_NODE}"
    TASKS_PER_NODE=${TASKS_PER_NODE:-${GPUS_PER_NODE}}
else
    GRES=""
    TASKS_PER_NODE=${TASKS_PER_NODE:-${GPUS}}
fi
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
PY_ARGS=${@:5}
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}

PYTHONPATH="$(dirname $0)/..":$PYTHONPATH \
srun -p ${PARTITION} \
    --job-name=${JOB_NAME} \
    ${GRES} \
    --ntasks=${GPUS} \
    --ntasks-per-node=${TASKS_PER_NODE} \
    --cpus-per-task=${CPUS_PER_TASK} \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    $PYTHON -u $(dirname "$0")/test.py ${CONFIG} ${CHECKPOINT} --launcher="slurm" ${PY_ARGS}
