#!/usr/bin/env python3
"""How much of a seeded set's error is the MLS surface's own (issue 13).

  python3 benches/seeding/surface_error.py OUT_DIR SPACING [MLSPROJ]

OUT_DIR is benches/seeding/run.sh's (scan/, seed.ron, mlsproj.ply). Seeds
are projected onto the MLS surface, so they can be no nearer the truth
than it is. This projects 200,000 points drawn on the true mesh with the
seed job's config (particles: File) and reports their distance to the mesh
(the surface's own RMS and max, in σ), then splits the seeded set's holes
(mesh samples farther than 1.5 d from every seed, as score_seeding.py
counts them): those where the MLS surface itself lies over 1.5 d from the
truth, and those that are gaps between seeds on the MLS surface.
"""
import json
import os
import re
import subprocess
import sys

import numpy as np
import trimesh
from plyfile import PlyData, PlyElement
from scipy.spatial import cKDTree

out, spacing = sys.argv[1], float(sys.argv[2])
mlsproj = sys.argv[3] if len(sys.argv) > 3 else "target/release/mlsproj"
manifest = json.load(open(os.path.join(out, "scan", "manifest.json")))
sigma = manifest["noise_sigma"]
mesh = trimesh.load(os.path.join(out, "scan", "mesh.ply"), process=False)
seed_config = open(os.path.join(out, "seed.ron")).read()


def project(points, name):
    """The MLS projections of `points` under the seed job's config."""
    vertex = np.array([tuple(q) for q in points], dtype=[("x", "f8"), ("y", "f8"), ("z", "f8")])
    PlyData([PlyElement.describe(vertex, "vertex")]).write(os.path.join(out, name + ".ply"))
    config = re.sub(r"particles: Seed\([^)]*\)", f'particles: File("{name}.ply")', seed_config)
    config = config.replace('"mlsproj.ply"', f'"{name}-projected.ply"')
    with open(os.path.join(out, name + ".ron"), "w") as f:
        f.write(config)
    subprocess.run([mlsproj, "run", os.path.join(out, name + ".ron"), "--quiet"], check=True, capture_output=True)
    v = PlyData.read(os.path.join(out, name + "-projected.ply")).elements[0]
    return np.column_stack([v["x"], v["y"], v["z"]]).astype(np.float64)


truth, _ = trimesh.sample.sample_surface(mesh, 200000, seed=5)
on_surface = project(truth, "truth")
_, distance, _ = trimesh.proximity.closest_point(mesh, on_surface)
v = PlyData.read(os.path.join(out, "mlsproj.ply")).elements[0]
seeds = np.column_stack([v["x"], v["y"], v["z"]]).astype(np.float64)
tree = cKDTree(seeds)
dense, _ = trimesh.sample.sample_surface(mesh, 200000, seed=9)
gap, _ = tree.query(dense)
holes = dense[gap > 1.5 * spacing]
under = project(holes, "holes") if len(holes) else holes
surface_off = np.linalg.norm(under - holes, axis=1) > 1.5 * spacing
seed_gap = tree.query(under)[0] > 1.5 * spacing if len(holes) else surface_off
print(json.dumps({
    "surface_rms_sigma": float(np.sqrt(np.mean(distance ** 2)) / sigma),
    "surface_max_sigma": float(distance.max() / sigma),
    "holes": float(len(holes) / len(dense)),
    "holes_where_surface_is_off": float(surface_off.sum() / len(dense)),
    "holes_between_seeds_on_surface": float(seed_gap.sum() / len(dense)),
}))
