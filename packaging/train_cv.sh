#!/usr/bin/env bash
# Recipe selection by patient-grouped cross-validation on the training part (issue 21).
# Resumable: run it again after a cut and finished (recipe, fold) results are kept, an
# interrupted fold resumes from its last epoch. In the background on a shared CPU:
#   nohup bash packaging/train_cv.sh > runs/cv/log.txt 2>&1 &
# The figures in the README and docs/cv_recipe_selection.json came from exactly these
# settings (2-core CPU, TensorFlow): 96 px, 3 epochs, 3 folds, the recipes in order per fold;
# the 6-epoch check with OUT=runs/cv6 EPOCHS=6 RECIPES="baseline thorax mixup" (folds.json copied
# from runs/cv, so the held-out patients are the same), and the lung-focus penalty with
# OUT=runs/cv6 EPOCHS=6 RECIPES=lung_focus; the seed-noise and EMA check with OUT=runs/cv6 EPOCHS=6
# RECIPES="baseline_seed1 ema", then RECIPES=lung_focus_seed1 (ensembles: bench/cross_validate.py ensemble);
# the baseline trained on trimmed films (0.4.1) with OUT=runs/cv6_trim EPOCHS=6 RECIPES=baseline (folds.json
# copied from runs/cv6; a fresh out_dir decodes with blank borders trimmed); the light lung-focus
# penalty (0.1) with OUT=runs/cv6 EPOCHS=6 RECIPES=lung_focus_light (0.4.2).
# RECIPES picks them (default: every candidate; finished ones are skipped).
set -eu
DATA=${DATA:-../shared/data/chest_xray/train}
OUT=${OUT:-runs/cv}
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
"$PY" bench/cross_validate.py run --folder "$DATA" --out "$OUT" --recipes ${RECIPES:-baseline mixup ema thorax} \
    --folds "${FOLDS:-3}" --epochs "${EPOCHS:-3}" --input-size "${SIZE:-96}"
"$PY" bench/cross_validate.py summary --out "$OUT" > "$OUT/summary.json"
