#!/usr/bin/env python3
"""A sparse noisy scan of a mesh for the seeding benchmark (issue 13).

  python3 benches/seeding/make_scan.py MESH OUT_DIR [--points 30000] [--noise 0.001]

Writes OUT_DIR/cloud.ply (float x y z, no normals: the points sampled
uniformly by area, moved along the face normal by N(0, σ²), σ = noise ×
the bounding-box diagonal), OUT_DIR/mesh.ply (the truth, for
../shared/bench/score_seeding.py) and OUT_DIR/manifest.json (area,
noise_sigma, and the cloud's mean nearest-neighbour spacing s: the issue
seeds at d = s / 2). Seeded: the same scan every run.
"""
import json
import os
import sys

import numpy as np
import trimesh
from plyfile import PlyData, PlyElement
from scipy.spatial import cKDTree

mesh_path, out = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
points = int(args[args.index("--points") + 1]) if "--points" in args else 30000
noise = float(args[args.index("--noise") + 1]) if "--noise" in args else 0.001
mesh = trimesh.load(mesh_path, process=False)
diagonal = float(np.linalg.norm(mesh.bounds[1] - mesh.bounds[0]))
sigma = noise * diagonal
p, faces = trimesh.sample.sample_surface(mesh, points, seed=13)
rng = np.random.default_rng(13)
p = p + mesh.face_normals[faces] * rng.normal(0.0, sigma, (points, 1))
os.makedirs(out, exist_ok=True)
vertex = np.array([tuple(q) for q in p.astype(np.float32)], dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
PlyData([PlyElement.describe(vertex, "vertex")]).write(os.path.join(out, "cloud.ply"))
mesh.export(os.path.join(out, "mesh.ply"))
spacing = float(np.mean(cKDTree(p).query(p, 2)[0][:, 1]))
manifest = {"area": float(mesh.area), "noise_sigma": sigma, "diagonal": diagonal, "mean_spacing": spacing, "points": points}
json.dump(manifest, open(os.path.join(out, "manifest.json"), "w"), indent=1)
print(json.dumps(manifest))
