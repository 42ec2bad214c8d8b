#!/usr/bin/env bash
# The full-resolution lung-focus candidate (issue 21): the v2 recipe with the penalty on
# Grad-CAM evidence outside the lung fields that cross-validation supported at 96 px
# (README, "A model trained to look at the lungs"). Starts the run, or resumes it from its
# last checkpoint when the run folder exists, so a cut (a session's end) loses one epoch at
# most. On the 2-core CPU an epoch at 224 px takes about 10 minutes: run it in the background
#   nohup bash packaging/train_lung_focus.sh >> runs/lung_focus/train.log 2>&1 &
# and again after each cut. EPOCHS=N on a resume re-plans the run's length (`train --resume RUN
# --epochs N`: the schedule is rebuilt from the step reached); the 2026-12-05 candidate was
# resumed after epoch 6 with EPOCHS=11. On a GPU machine set KERAS_BACKEND as
# packaging/train_v2_gpu.sh does.
set -eu
DATA=${DATA:-../shared/data/chest_xray/train}
RUN=${RUN:-runs/lung_focus/custom_cnn-lf0.3-s0}
PY=${PY:-.venv/bin/python}
mkdir -p "$(dirname "$RUN")"
if [ -f "$RUN/config.json" ]; then
  exec "$PY" -m core.cli train --resume "$RUN" --output "$RUN/out" ${EPOCHS:+--epochs "$EPOCHS"}
fi
exec "$PY" -m core.cli train "$DATA" --arch custom_cnn --seed 0 --epochs 30 --patience 10 \
  --lung-focus 0.3 --name custom_cnn-lf0.3-s0 --run-dir "$RUN" --output "$RUN/out"
