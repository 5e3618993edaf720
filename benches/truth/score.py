#!/usr/bin/env python3
"""Distance of projected points to the mesh of a truth set.

  python3 benches/truth/score.py SET_DIR OUTPUT.ply [--json]

Reads x y z (and nx ny nz when present) of the first element of OUTPUT.ply,
any PLY (mlsproj's, PCL's). For every finite point: the distance to the
closest point of SET_DIR/mesh.ply (trimesh.proximity.closest_point: exact,
point to triangle) and the angle between its normal and the normal of the
face that closest point lies on, orientation ignored. Prints RMS, median,
p95 and max distance, mean and p95 angle in degrees, and how many points
came back, in absolute units and relative to the set's noise σ.
"""
import json
import sys
from pathlib import Path

import numpy as np
import trimesh
from plyfile import PlyData


def score(set_dir, output):
    set_dir = Path(set_dir)
    manifest = json.loads((set_dir / "manifest.json").read_text())
    mesh = trimesh.load(set_dir / manifest["mesh"], process=False)
    vertex = PlyData.read(str(output)).elements[0]
    names = vertex.data.dtype.names
    points = np.column_stack([vertex[c] for c in "xyz"]).astype(np.float64)
    finite = np.isfinite(points).all(1)
    result = dict(points=len(points), expected=manifest["particles"], finite=int(finite.sum()))
    if "status" in names:
        codes, counts = np.unique(np.asarray(vertex["status"]), return_counts=True)
        result["statuses"] = {int(c): int(n) for c, n in zip(codes, counts)}
    _, distance, triangle = trimesh.proximity.closest_point(mesh, points[finite])
    result.update(rms=float(np.sqrt(np.mean(distance**2))), median=float(np.median(distance)),
                  p95=float(np.percentile(distance, 95)), max=float(distance.max()))
    if all(c in names for c in ("nx", "ny", "nz")):
        normals = np.column_stack([vertex[c] for c in ("nx", "ny", "nz")]).astype(np.float64)[finite]
        length = np.linalg.norm(normals, axis=1)
        given = length > 0
        cosine = np.abs(np.sum(normals[given] * mesh.face_normals[triangle[given]], 1) / length[given])
        angle = np.degrees(np.arccos(np.clip(cosine, 0, 1)))
        result.update(normal_deg_mean=float(angle.mean()), normal_deg_p95=float(np.percentile(angle, 95)))
    result["sigma"] = manifest["noise_sigma"]
    return result


def main():
    if len(sys.argv) < 3 or sys.argv[1] in ("-h", "--help"):
        sys.exit(__doc__)
    result = score(sys.argv[1], sys.argv[2])
    if "--json" in sys.argv:
        print(json.dumps(result))
        return
    sigma = result["sigma"]
    for key, value in result.items():
        if key in ("rms", "median", "p95", "max"):
            print(f"{key:>16}: {value:.6g}  ({value / sigma:.3f} σ)")
        elif isinstance(value, float):
            print(f"{key:>16}: {value:.6g}")
        else:
            print(f"{key:>16}: {value}")


if __name__ == "__main__":
    main()
