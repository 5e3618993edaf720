#!/usr/bin/env python3
"""Signs of `mlsproj normals --tile I/N` + `merge` against a whole `normals` run (issue 12).

  python3 benches/normals_tiles.py [TRUTH_DIR] [SET ...] [--tiles N,N,...]

For each truth set (default: target/truth, sets bunny, armadillo, fandisk, fins, fingers), strips
the cloud's normals (benches/orientation.py), runs `mlsproj normals` whole, then in N tiles merged,
and counts the points whose merged normal has the other sign than the whole run's; both outputs are
scored against the mesh by ../shared/bench/score_orientation.py (wrong-sign fraction). Each tile's
CPU time and peak RSS come from /usr/bin/time. Prints one markdown table.
Needs: pip numpy plyfile trimesh rtree.
"""
import sys
from pathlib import Path

from common import MLSPROJ, TARGET, mlsproj_config
from orientation import score, stripped, timed

OUT = TARGET / "normals_tiles"


def normals(path):
    """The nx ny nz columns of a PLY file, as an (n, 3) array."""
    import numpy as np
    from plyfile import PlyData
    vertex = PlyData.read(str(path))["vertex"].data
    return np.stack([vertex[axis].astype("f8") for axis in ("nx", "ny", "nz")], axis=1)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--tiles")]
    counts = [4, 8]
    for a in sys.argv[1:]:
        if a.startswith("--tiles"):
            counts = [int(n) for n in a.split("=", 1)[1].split(",")]
    truth = Path(args[0]) if args else TARGET / "truth"
    sets = args[1:] or ["bunny", "armadillo", "fandisk", "fins", "fingers"]
    OUT.mkdir(parents=True, exist_ok=True)
    rows = ["| set | tiles | CPU s (sum of tiles) | peak RSS MB (largest tile) | signs differing from whole | "
            "wrong signs whole | wrong signs tiled |", "|---|---|---|---|---|---|---|"]
    for name in sets:
        folder = truth / name
        bare = stripped(folder / "cloud.ply", OUT / f"{name}-xyz.ply")
        for tiles in [1, *counts]:
            output = OUT / f"{name}-{tiles}.ply"
            config = mlsproj_config(OUT / f"{name}-{tiles}.ron", bare, None, output, "normal_neighbours: 30")
            if tiles == 1:
                wall, cpu, rss = timed([MLSPROJ, "normals", config, "--quiet"])
                whole = normals(output)
                whole_wrong = score(folder / "mesh.ply", output)["flips"]
                rows.append(f"| {name} | whole | {cpu:.2f} | {rss:.0f} | - | {100 * whole_wrong:.3f}% | - |")
                continue
            cpu_sum, rss_max = 0.0, 0.0
            for index in range(tiles):
                _, cpu, rss = timed([MLSPROJ, "normals", config, "--tile", f"{index}/{tiles}", "--quiet"])
                cpu_sum, rss_max = cpu_sum + cpu, max(rss_max, rss)
            timed([MLSPROJ, "merge", config, "--tiles", str(tiles), "--quiet"])
            tiled = normals(output)
            differ = int(((whole * tiled).sum(axis=1) <= 0).sum())
            wrong = score(folder / "mesh.ply", output)["flips"]
            rows.append(f"| {name} | {tiles} | {cpu_sum:.2f} | {rss_max:.0f} | {differ} ({100 * differ / len(whole):.3f}%) | "
                        f"{100 * whole_wrong:.3f}% | {100 * wrong:.3f}% |")
            print(rows[-1], file=sys.stderr, flush=True)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
