#!/usr/bin/env bash
# The experiment of docs/results.md: train `outcome`, `rae` and `maro` from the same base with the
# same matches and seeds on bargaining-v1 and undercover-v1 (4 seats), then evaluate each final
# adapter against the frozen base on held-out seeds with seats swapped.
# Usage: benchmarks/experiment.sh [OUT_DIR]   (about 80 minutes on a 2-core CPU; GAMES=... runs one game)
set -euo pipefail
OUT=${1:-runs/experiment}
MAROCMD=${MAROCMD:-maro}
VARIANTS=${VARIANTS:-"outcome rae maro"}
LEARNER=${LEARNER:-benchmarks/experiment_learner.json}
run() {  # game, seats, iterations, matches per iteration, eval matches
  local game=$1 seats=$2 iterations=$3 matches=$4 eval_matches=$5
  for v in $VARIANTS; do
    $MAROCMD selfplay --game "$game" --players "$game=$seats" --iterations "$iterations" \
      --matches-per-iteration "$matches" --variant "$v" --config "$LEARNER" --seed 0 --run-dir "$OUT/$game-$v"
    [ -f "$OUT/$game-$v/eval/eval.json" ] && continue  # rerunning the script resumes where it stopped
    latest=$(cat "$OUT/$game-$v/adapters/LATEST")
    $MAROCMD eval --game "$game" --players "$game=$seats" --adapter "$OUT/$game-$v/adapters/$latest" \
      --matches "$eval_matches" --run-dir "$OUT/$game-$v/eval"
  done
}
GAMES=${GAMES:-"bargaining-v1 undercover-v1"}
for game in $GAMES; do
  case $game in
    bargaining-v1) run bargaining-v1 2 3 12 ${BARGAINING_EVAL:-24} ;;
    undercover-v1) run undercover-v1 4 1 2 ${UNDERCOVER_EVAL:-4} ;;
  esac
done
