#!/usr/bin/env bash
# Trains the v2 candidates (two architectures, several seeds, recipe ablations)
# in parallel on one GPU, with the same `pneumoscan-cli train` code path the
# CLI and the wizard use, on Keras' JAX backend (the GPU machine has JAX with
# CUDA, not TensorFlow; Keras 3 saves backend-independent .keras files that
# the app loads on TensorFlow). Run from the repository root:
#   DATA=path/to/chest_xray/train OUT=results/ bash packaging/train_v2_gpu.sh
# Wheels for packages the GPU image lacks can be put in .whl/ beforehand.
set -u
DATA=${DATA:-../shared/data/chest_xray/train}
OUT=${OUT:-runs/v2-out}
LIMIT=${LIMIT:-420}           # seconds per run; checkpoints survive a cut
EPOCHS=${EPOCHS:-30}
mkdir -p runs/v2 "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export KERAS_BACKEND=${KERAS_BACKEND:-jax} XLA_PYTHON_CLIENT_MEM_FRACTION=0.11 TF_CPP_MIN_LOG_LEVEL=2
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true

train() {  # NAME ARGS...: one candidate, its run folder and log under runs/v2
  local name=$1; shift
  timeout "$LIMIT" python3 -m core.cli train "$DATA" --name "$name" --run-dir "runs/v2/$name" \
    --output "runs/v2/$name/out" --epochs "$EPOCHS" --patience 10 "$@" > "runs/v2/$name.log" 2>&1
  echo "$name exit $?" >> runs/v2/status.txt
}
train custom_cnn-s0 --arch custom_cnn --seed 0 &
train custom_cnn-s1 --arch custom_cnn --seed 1 &
train custom_cnn-s2 --arch custom_cnn --seed 2 &
train custom_cnn-basic-s0 --arch custom_cnn --seed 0 --augment-level basic &
train custom_cnn-v1recipe-s0 --arch custom_cnn --seed 0 --augment-level basic --no-standardise &
train mobilenet_v2-s0 --arch mobilenet_v2 --seed 0 &
train mobilenet_v2-s1 --arch mobilenet_v2 --seed 1 &
wait
cat runs/v2/status.txt
# One archive per candidate: the registered model and card when the run ended,
# else its best checkpoint, plus its history and split.
for dir in runs/v2/*/; do
  name=$(basename "$dir")
  files=("runs/v2/$name.log" "$dir/state.json" "$dir/split.json" "$dir/config.json")
  if ls "$dir"/out/*.keras >/dev/null 2>&1; then files+=("$dir/out"); else files+=("$dir/best.keras"); fi
  tar czf "$OUT/$name.tgz" "${files[@]}" 2>/dev/null
done
ls -la "$OUT"
