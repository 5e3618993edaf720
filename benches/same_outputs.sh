#!/usr/bin/env bash
# Refactor check: do two revisions of mlsproj write the same bytes?
#
#   bash benches/same_outputs.sh OLD [NEW]
#
# OLD and NEW are git revisions (built into target/revisions/) or paths to
# mlsproj binaries; NEW defaults to the working tree's release build. Runs
# both on the benchmark sets of ../shared/bench and the real scans of
# ../shared/real (whatever of them exists): `run` with several configs,
# `run --tile I/3` and `merge`, `check` and `info`, and compares every
# output file byte for byte and every report line except the times.
# Exit 0 when all agree. A tool for refactors, not a CI test: later work
# changes outputs on purpose.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
shared=$root/../shared

binary_of() {
  local rev=$1
  if [ -x "$rev" ] && [ -f "$rev" ]; then
    realpath "$rev"
    return
  fi
  local sha dir
  sha=$(git rev-parse --short "$rev")
  dir=$root/target/revisions/$sha
  if [ ! -x "$dir/bin/mlsproj" ]; then
    [ -d "$dir/src" ] || git worktree add --detach --force "$dir/src" "$sha" >&2
    CARGO_TARGET_DIR=$root/target/revisions/build cargo build --release --quiet \
      --manifest-path "$dir/src/Cargo.toml" >&2
    mkdir -p "$dir/bin"
    cp "$root/target/revisions/build/release/mlsproj" "$dir/bin/mlsproj"
    git worktree remove --force "$dir/src" >&2
  fi
  echo "$dir/bin/mlsproj"
}

old=$(binary_of "$1")
if [ $# -ge 2 ]; then
  new=$(binary_of "$2")
else
  cargo build --release --quiet >&2
  new=$root/target/release/mlsproj
fi
echo "old: $old"
echo "new: $new"

work=$root/target/same_outputs
rm -rf "$work"
mkdir -p "$work/old" "$work/new"

# jobs: name, cloud, particles (Cloud or a file), extra config fields
jobs=()
add_job() { jobs+=("$1|$2|$3|$4"); }
for set in sphere_seed torus saddle; do
  dir=$shared/bench/$set
  [ -f "$dir/manifest.json" ] || continue
  h=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['radius_h'])" "$dir/manifest.json")
  p="File(\"$dir/particles.ply\")"
  add_job "$set-default" "$dir/cloud.ply" "$p" "support: Radius($h),"
  add_job "$set-gaussian" "$dir/cloud.ply" "$p" "support: Radius($h), weight: Gaussian,"
  add_job "$set-nearest-foot" "$dir/cloud.ply" "$p" "support: Nearest(30), start: Foot,"
  add_job "$set-rimls" "$dir/cloud.ply" "$p" "support: Radius($h), robust: Rimls,"
  add_job "$set-orthogonal-centroid" "$dir/cloud.ply" "$p" \
    "support: RadiusNearest(radius: $h, k: 40), projection: Orthogonal, start: Centroid, iterations: 5, tolerance: 1e-4,"
  add_job "$set-positions-particle" "$dir/cloud.ply" "$p" \
    "support: Radius($h), normal_weight: 0.0, start: Particle, iterations: 1, orientation: Viewpoint(0.0, 0.0, 5.0),"
  add_job "$set-smooth" "$dir/cloud.ply" "Cloud" "support: Radius($h), encoding: Ascii,"
done
for scan in "$shared"/real/*.ply "$shared"/real/*.xyz; do
  [ -f "$scan" ] || continue
  name=$(basename "$scan")
  add_job "$name-smooth" "$scan" "Cloud" "support: Nearest(30),"
  add_job "$name-rimls" "$scan" "Cloud" "support: Nearest(30), robust: Rimls, orientation: AwayFromCentroid,"
done
[ ${#jobs[@]} -gt 0 ] || { echo "no inputs found under $shared"; exit 2; }

# Everything each binary reports and writes, under $work/{old,new}/JOB/.
run_all() {
  local bin=$1 side=$2
  for job in "${jobs[@]}"; do
    IFS='|' read -r name cloud particles fields <<<"$job"
    local out=$work/$side/$name
    mkdir -p "$out"
    printf '(cloud: "%s", particles: %s, output: "%s", %s)\n' \
      "$cloud" "$particles" "$out/out.ply" "$fields" >"$out/job.ron"
    "$bin" run "$out/job.ron" --quiet 2>&1 | grep -v '^time:' | sed "s|$work/$side|WORK|g" >"$out/run.txt" || true
    "$bin" check "$out/job.ron" 2>&1 | sed "s|$work/$side|WORK|g" >"$out/check.txt" || true
    for tile in 0 1 2; do
      "$bin" run "$out/job.ron" --quiet --tile "$tile/3" >/dev/null 2>&1 || true
    done
    "$bin" merge "$out/job.ron" --tiles 3 --quiet 2>&1 | sed "s|$work/$side|WORK|g" >"$out/merge.txt" || true
    mv "$out/out.ply" "$out/merged.ply" 2>/dev/null || true
    "$bin" run "$out/job.ron" --quiet >/dev/null 2>&1 || true
    "$bin" info "$cloud" >"$out/info.txt" 2>&1 || true
  done
}

run_all "$old" old
run_all "$new" new

if diff -r --exclude=job.ron "$work/old" "$work/new" >"$work/diff.txt"; then
  files=$(find "$work/new" -type f ! -name job.ron | wc -l)
  echo "same: ${#jobs[@]} jobs, $files files (outputs, tiles, merges, reports) byte-identical"
else
  echo "DIFFERENT:"
  head -40 "$work/diff.txt"
  exit 1
fi
