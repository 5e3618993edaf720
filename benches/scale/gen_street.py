#!/usr/bin/env python3
"""A street-like scan for the scale runs (issue 15): planes spread over a
1 km x 1 km x 50 m box, the thin shell in a big box that a uniform grid
over the bounding box could not hold.

  gen_street.py OUTDIR CLOUD_POINTS PARTICLES [--noise 0.005] [--offset 0.05]
  gen_street.py --score OUTPUT.ply

Two streets cross at the box's middle, each 40 m wide and 1 km long,
with a facade 50 m high along each side: six planes, 280,000 m² in all,
points spread evenly over the area. Writes OUTDIR/cloud.ply (double
x y z, Gaussian noise of --noise metres across the planes, no normals)
and OUTDIR/particles.ply (double x y z, up to --offset off a plane), in
blocks. `--score` reads a projected output (double or float x y z) and
prints the RMS and largest distance of its points to the nearest plane.
Needs numpy, and plyfile for `--score`.
"""
import argparse
import os

import numpy as np

from gen_sphere import write_blocks

# (axis held fixed, its value, the ranges of the other two axes in x, y, z order)
PLANES = [
    (2, 0.0, ((0.0, 1000.0), (480.0, 520.0))),    # road along x
    (1, 480.0, ((0.0, 1000.0), (0.0, 50.0))),     # its facades
    (1, 520.0, ((0.0, 1000.0), (0.0, 50.0))),
    (2, 0.0, ((480.0, 520.0), (0.0, 1000.0))),    # road along y
    (0, 480.0, ((0.0, 1000.0), (0.0, 50.0))),     # its facades
    (0, 520.0, ((0.0, 1000.0), (0.0, 50.0))),
]


def area(plane):
    (a0, a1), (b0, b1) = plane[2]
    return (a1 - a0) * (b1 - b0)


def sample(rng, n, spread, uniform):
    """`n` points over the planes, by area, `spread` off them."""
    areas = np.array([area(p) for p in PLANES])
    which = rng.choice(len(PLANES), size=n, p=areas / areas.sum())
    out = np.empty((n, 3))
    for k, (axis, value, ((a0, a1), (b0, b1))) in enumerate(PLANES):
        rows = which == k
        m = int(rows.sum())
        free = [a for a in range(3) if a != axis]
        out[rows, free[0]] = rng.uniform(a0, a1, m)
        out[rows, free[1]] = rng.uniform(b0, b1, m)
        off = rng.uniform(-spread, spread, m) if uniform else rng.normal(0, spread, m)
        out[rows, axis] = value + off
    return out


def distance_to_planes(p):
    """Distance of each point to the nearest of PLANES (within its extent)."""
    best = np.full(len(p), np.inf)
    for axis, value, ((a0, a1), (b0, b1)) in PLANES:
        free = [a for a in range(3) if a != axis]
        da = np.maximum(0, np.maximum(a0 - p[:, free[0]], p[:, free[0]] - a1))
        db = np.maximum(0, np.maximum(b0 - p[:, free[1]], p[:, free[1]] - b1))
        d = np.sqrt((p[:, axis] - value) ** 2 + da ** 2 + db ** 2)
        best = np.minimum(best, d)
    return best


def score(path):
    from plyfile import PlyData
    vertex = PlyData.read(path)["vertex"].data
    p = np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=1).astype(float)
    d = distance_to_planes(p)
    print(f"points {len(p)}, RMS {np.sqrt(np.mean(d ** 2)):.3g} m, max {d.max():.3g} m")


def main():
    a = argparse.ArgumentParser()
    a.add_argument("outdir", nargs="?")
    a.add_argument("cloud", type=int, nargs="?")
    a.add_argument("particles", type=int, nargs="?")
    a.add_argument("--noise", type=float, default=0.005)
    a.add_argument("--offset", type=float, default=0.05)
    a.add_argument("--score")
    args = a.parse_args()
    if args.score:
        score(args.score)
        return
    os.makedirs(args.outdir, exist_ok=True)
    rng = np.random.default_rng(2026)
    write_blocks(os.path.join(args.outdir, "cloud.ply"), args.cloud, "double",
                 lambda n: sample(rng, n, args.noise, False))
    write_blocks(os.path.join(args.outdir, "particles.ply"), args.particles, "double",
                 lambda n: sample(rng, n, args.offset, True))


if __name__ == "__main__":
    main()
