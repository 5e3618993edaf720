#!/usr/bin/env python3
"""Normals for clouds without them, mlsproj beside CGAL, in one run (issue 12).

  python3 benches/orientation.py [TRUTH_DIR] [SET ...]

For each truth set (default: target/truth, made by benches/truth/make_sets.py; sets bunny,
armadillo, fandisk, fins), strips the cloud's normals, then times `mlsproj normals` (estimated and
oriented, k = 30) and CGAL's pca_estimate_normals + mst_orient_normals (../shared/peers/cgal_normals,
k = 30, built into target/peers if missing) under /usr/bin/time, and scores both outputs with
../shared/bench/score_orientation.py against the mesh: wrong-sign fraction (a zero or non-finite
normal counts as wrong) and mean angle. The cloud's own true normals are scored too: the scorer
takes the sign of the mesh face closest to each point, so where a part is thinner than the noise
or at a sharp edge it counts some exact normals wrong (points the noise carried nearer the other
face), and that row is the floor a method signing each point by its sampled face would reach.
Then the accuracy each tool's normals give: the set's particles projected by `mlsproj run` at the
set's support radius h (default config otherwise), once on the bare cloud (`cloud_normals:
Estimate`, what a user without normals runs) and once on CGAL's output (its normals as the cloud's),
scored against the mesh by benches/truth/score.py (RMS and max distance as multiples of the noise σ).
Prints one markdown table, also target/orientation/table.md.
Needs: pip numpy scipy plyfile trimesh rtree; apt libcgal-dev libtbb-dev libeigen3-dev.
"""
import json
import subprocess
import sys
from pathlib import Path

from common import MLSPROJ, ROOT, SHARED, TARGET, mlsproj_config, run

sys.path.insert(0, str(Path(__file__).resolve().parent / "truth"))
from score import score as score_positions  # noqa: E402

OUT = TARGET / "orientation"
CGAL_NORMALS = TARGET / "peers" / "orient_normals"
K = 30


def stripped(cloud, path):
    """A copy of `cloud` with x y z only."""
    from plyfile import PlyData, PlyElement
    import numpy as np
    vertex = PlyData.read(str(cloud))["vertex"].data
    xyz = np.empty(len(vertex), dtype=[("x", "f8"), ("y", "f8"), ("z", "f8")])
    for axis in "xyz":
        xyz[axis] = vertex[axis]
    PlyData([PlyElement.describe(xyz, "vertex")], text=False).write(str(path))
    return path


def timed(cmd):
    """Wall seconds, CPU seconds and peak RSS (MB) of `cmd`, from /usr/bin/time."""
    result = run(["/usr/bin/time", "-f", "time %e %U %S %M", *cmd])
    line = next(l for l in result.err.splitlines() if l.startswith("time "))
    wall, user, system, rss = line.split()[1:]
    return float(wall), float(user) + float(system), int(rss) / 1024


def score(mesh, ply):
    result = run([sys.executable, SHARED / "bench/score_orientation.py", mesh, ply, "--json"])
    return json.loads(result.out.strip().splitlines()[-1])


def accuracy(folder, cloud, fields, output):
    """RMS and max distance (as multiples of σ) of the set's particles projected onto `cloud` at the
    set's support radius, with the config `fields`."""
    folder = folder.resolve()
    manifest = json.loads((folder / "manifest.json").read_text())
    config = mlsproj_config(output.with_suffix(".ron"), cloud.resolve(), folder / "particles.ply", output,
                            f"support: Radius({manifest['radius_h']}), {fields}")
    run([MLSPROJ, "run", config, "--quiet"])
    s = score_positions(folder, output)
    return f"{s['rms'] / s['sigma']:.3f} / {s['max'] / s['sigma']:.2f}"


def main():
    truth = Path(sys.argv[1]) if len(sys.argv) > 1 else TARGET / "truth"
    sets = sys.argv[2:] or ["bunny", "armadillo", "fandisk", "fins"]
    OUT.mkdir(parents=True, exist_ok=True)
    if not CGAL_NORMALS.is_file():
        CGAL_NORMALS.parent.mkdir(parents=True, exist_ok=True)
        run(["sh", SHARED / "peers/cgal_normals/build.sh", CGAL_NORMALS])
    run(["cargo", "build", "--release", "--manifest-path", ROOT / "Cargo.toml"])
    rows = ["| set | tool | wall (s) | CPU (s) | peak RSS (MB) | wrong signs | mean angle ° | RMS / max (σ) |",
            "|---|---|---|---|---|---|---|---|"]
    for name in sets:
        folder = truth / name
        s = score(folder / "mesh.ply", folder / "cloud.ply")
        rows.append(f"| {name} | the cloud's true normals | | | | "
                    f"{100 * s['flips']:.3f}% | {s['angle_deg_mean']:.1f} | |")
        print(rows[-1], file=sys.stderr, flush=True)
        bare = stripped(folder / "cloud.ply", OUT / f"{name}-xyz.ply")
        ours = OUT / f"{name}-mlsproj.ply"
        config = mlsproj_config(OUT / f"{name}.ron", bare, None, ours, f"normal_neighbours: {K}")
        theirs = OUT / f"{name}-cgal.ply"
        # The projection's input for each tool: the bare cloud, whose normals mlsproj estimates as
        # `normals` does (same k), and CGAL's output with its normals.
        tools = [("mlsproj normals", [MLSPROJ, "normals", config, "--quiet"], ours,
                  (bare, f"cloud_normals: Estimate, normal_neighbours: {K}")),
                 ("CGAL pca + mst_orient", [CGAL_NORMALS, bare, theirs, K, "pca"], theirs, (theirs, ""))]
        for tool, cmd, output, (cloud, fields) in tools:
            wall, cpu, rss = timed(cmd)
            s = score(folder / "mesh.ply", output)
            projected = accuracy(folder, cloud, fields, output.with_name(output.stem + "-projected.ply"))
            rows.append(f"| {name} | {tool} | {wall:.2f} | {cpu:.2f} | {rss:.0f} | "
                        f"{100 * s['flips']:.3f}% | {s['angle_deg_mean']:.1f} | {projected} |")
            print(rows[-1], file=sys.stderr, flush=True)
    table = "\n".join(rows) + "\n"
    (OUT / "table.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
