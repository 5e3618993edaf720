#!/bin/sh
# The seeding benchmark of issue 13, in one run: a sparse noisy scan of a
# mesh (30,000 points, σ = 0.1% of the diagonal), seeded at d = s/2 (s its
# mean nearest-neighbour spacing) by mlsproj and by PCL's
# RANDOM_UNIFORM_DENSITY, each scored by ../shared/bench/score_seeding.py.
#   sh benches/seeding/run.sh MESH [PCL_BINARY]
# MESH: e.g. the bunny of benches/truth (target/truth/meshes/bunny00.off);
# PCL_BINARY: ../shared/peers/pcl_mls built by its build.sh (skipped if absent).
# benches/seeding/surface_error.py then says how much of the seeds' error is
# the MLS surface's own.
# Writes under target/seedbench; run from the repository root after
# `cargo build --release`. Each tool's CPU time (user + system, both
# threads) and wall time are printed as `cpu:` lines: on a shared machine
# the CPU time is the steadier measure.
set -e
mesh=$1
pcl=${2:-}
out=target/seedbench
mkdir -p $out
python3 benches/seeding/make_scan.py "$mesh" $out/scan > $out/scan.json
spacing=$(python3 -c "import json; print(json.load(open('$out/scan/manifest.json'))['mean_spacing'] / 2)")
cat > $out/seed.ron <<RON
(cloud: "scan/cloud.ply", particles: Seed(spacing: $spacing), output: "mlsproj.ply", threads: 2)
RON
target/release/mlsproj check $out/seed.ron
/usr/bin/time -f 'cpu: mlsproj %U s user, %S s system, %e s wall, %M KB' target/release/mlsproj run $out/seed.ron --quiet
python3 ../shared/bench/score_seeding.py $out/scan/manifest.json $out/mlsproj.ply $spacing --json
# The MLS surface's own error, which bounds the seeds': see the script.
python3 benches/seeding/surface_error.py $out $spacing
if [ -n "$pcl" ] && [ -x "$pcl" ]; then
    # The support radius of the median cloud point's 64 nearest, as mlsproj's default.
    radius=$(target/release/mlsproj check $out/seed.ron | sed -n 's/.*support radius h: min [0-9.]*, median \([0-9.]*\),.*/\1/p')
    /usr/bin/time -f 'cpu: pcl %U s user, %S s system, %e s wall, %M KB' \
        "$pcl" $out/scan/cloud.ply none $out/pcl.ply --radius "$radius" --mode random --density 480 --threads 2
    python3 ../shared/bench/score_seeding.py $out/scan/manifest.json $out/pcl.ply $spacing --json
fi
