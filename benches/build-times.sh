#!/usr/bin/env bash
# Build times of the host before and after the crate split: one run, one machine.
# Usage: benches/build-times.sh BEFORE_COMMIT AFTER_COMMIT (docs/BENCHMARKS.md, "Build times").
# Each side: a worktree, a fresh CARGO_TARGET_DIR; cold build, two rebuilds after
# touching one HTTP handler, then the host's own crates from clean. Needs bc.
set -euo pipefail
before="$1"; after="$2"
work="${WORK:-$(mktemp -d)}"; mkdir -p "$work"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
for side in before after; do
  rm -rf "$work/wt-$side"; git -C "$repo" worktree prune
  git -C "$repo" worktree add -f --detach "$work/wt-$side" "${!side}" >/dev/null 2>&1
done
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); printf '%.1f' "$(echo "$e - $s" | bc)"; }
own() { # the host's own crates on this side
  if [[ -d host/core ]]; then echo "-p palisade -p palisade-core -p palisade-plugins -p palisade-streams -p palisade-detect -p palisade-vocab"; else echo "-p palisade"; fi
}
for side in before after; do
  cd "$work/wt-$side"
  export CARGO_TARGET_DIR="$work/target-$side"
  echo "$side cold (fresh target, deps included): $(secs cargo build --release -p palisade) s"
  for i in 1 2; do
    touch host/src/ingest/mod.rs
    echo "$side incremental (touch host/src/ingest/mod.rs) #$i: $(secs cargo build --release -p palisade) s"
  done
  cargo clean --release $(own) >/dev/null 2>&1
  echo "$side own crates from clean (deps built): $(secs cargo build --release -p palisade) s"
  rm -rf "$work/target-$side"
done
for side in before after; do git -C "$repo" worktree remove --force "$work/wt-$side"; done
echo done
