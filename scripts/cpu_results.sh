#!/usr/bin/env bash
# The real-data experiments behind docs/results/, in the order they were run (2 CPU cores, shared data in
# $MARSVISION_SHARED_DATA). Each step writes its JSON summary next to the results it produced.
set -euo pipefail
cd "$(dirname "$0")/.."
export MARSVISION_SHARED_DATA="${MARSVISION_SHARED_DATA:-$(realpath ../shared/data)}"
mv=.venv/bin/marsvision
declare -A method=([ce]=cls-ce [ours]=wang-cls [focal]=cls-focal [class-balanced]=cls-class-balanced)  # folder name → method
quiet="trainer.progress_bar=false"
step="${1:-all}"

if [[ $step == all || $step == method-a ]]; then
  # Method A: SimCLR on all 1,000 images (no labels), then 5/20/100 % of the remaining labels, pretrained vs random.
  [[ -s docs/results/method-a/pretrain.json ]] || \
    $mv pretrain -r simclr-ai4mars256-cpu runs_root=runs/method-a $quiet --json > docs/results/method-a/pretrain.json
  $mv sweep -r label-fractions-ai4mars256-cpu --out runs/method-a/sweep $quiet --json > docs/results/method-a/sweep.json
  $mv report runs/method-a/sweep --json > docs/results/method-a/report.json
fi
if [[ $step == all || $step == method-b-seg ]]; then
  # Method B-seg: chronological 60/40 split by SCLK; supervised DeepLabv3+ baseline, then the Table 9 ablation.
  $mv train -r wang-seg-ai4mars256-cpu method=seg-supervised trainer.max_epochs=16 name=wang-seg-supervised-cpu \
    runs_root=runs/method-b-seg $quiet --json > docs/results/method-b-seg/supervised.json
  $mv sweep -r wang-seg-ablation-cpu --out runs/method-b-seg/ablation $quiet --json > docs/results/method-b-seg/ablation.json
  $mv report runs/method-b-seg/ablation --json > docs/results/method-b-seg/report.json
fi
if [[ $step == all || $step == method-b-cls ]]; then
  # Method B-cls: MSL v1 train -> official val; CE baseline, ours, focal and class-balanced, 3 seeds each.
  for loss in ce ours focal class-balanced; do
    $mv sweep -r wang-cls-msl-cpu method=${method[$loss]} name=cls-$loss --seeds 0,1,2 \
      --out runs/method-b-cls/$loss $quiet --json > docs/results/method-b-cls/$loss.json
  done
fi
if [[ $step == all || $step == method-b-cls-128 ]]; then
  # Method B-cls at 128 px, 4 full epochs: seed by seed, so that an interrupted run leaves whole seeds; the sweep
  # skips finished (seed) runs, and the last call per method only writes the 3-seed summary.
  for seed in 0 1 2; do
    for loss in ce ours focal class-balanced; do
      $mv sweep -r wang-cls-msl128-cpu method=${method[$loss]} name=cls128-$loss --seeds $seed \
        --out runs/method-b-cls-128/$loss $quiet
    done
  done
  for loss in ce ours focal class-balanced; do
    $mv sweep -r wang-cls-msl128-cpu method=${method[$loss]} name=cls128-$loss --seeds 0,1,2 \
      --out runs/method-b-cls-128/$loss --json > docs/results/method-b-cls-128/$loss.json
  done
  $mv report runs/method-b-cls-128/{ce,ours,focal,class-balanced} --compare --out docs/results/method-b-cls-128/figures
fi
