#!/usr/bin/env python3
"""A large noisy unit sphere for the scale runs of the README (issue 5).

  gen_sphere.py OUTDIR CLOUD_POINTS PARTICLES [--noise 0.001] [--offset 0.01]

Writes OUTDIR/cloud.ply (float x y z) and OUTDIR/particles.ply (float x y z,
up to --offset off the sphere) as binary little-endian PLY, in blocks, so
that 20M points need little memory, and OUTDIR/manifest.json for
../shared/bench/score.py. Needs numpy.

The --noise and --offset defaults are sphere_large's (2M points: a
30-neighbour support of about 0.01; the point counts have no default). No
normals are written: the fit then uses positions alone. The support
shrinks as 1/sqrt(points), so keep the noise and offset in proportion for
a like-for-like set, e.g. for 20M points:
  gen_sphere.py target/bench/sphere_20m 20000000 20000000 --noise 0.00025 --offset 0.0025
"""
import argparse, json, os
import numpy as np

BLOCK = 1_000_000


def write_blocks(path, count, kind, block):
    """A binary little-endian PLY of `count` vertices `x y z` of `kind`
    (`float`, `double`), made `block(n)` rows (an (n, 3) array) at a time."""
    dtype = {"float": "<f4", "double": "<f8"}[kind]
    with open(path, "wb") as f:
        f.write(f"ply\nformat binary_little_endian 1.0\nelement vertex {count}\n"
                f"property {kind} x\nproperty {kind} y\nproperty {kind} z\nend_header\n".encode())
        left = count
        while left:
            n = min(BLOCK, left)
            f.write(block(n).astype(dtype).tobytes())
            left -= n


def write(path, count, rng, spread, uniform):
    def block(n):
        p = rng.normal(size=(n, 3))
        p /= np.linalg.norm(p, axis=1, keepdims=True)
        r = 1 + (rng.uniform(-spread, spread, n) if uniform else rng.normal(0, spread, n))
        return p * r[:, None]
    write_blocks(path, count, "float", block)


def main():
    a = argparse.ArgumentParser()
    a.add_argument("outdir"); a.add_argument("cloud", type=int); a.add_argument("particles", type=int)
    a.add_argument("--noise", type=float, default=0.001); a.add_argument("--offset", type=float, default=0.01)
    args = a.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    rng = np.random.default_rng(7)
    write(os.path.join(args.outdir, "cloud.ply"), args.cloud, rng, args.noise, uniform=False)
    write(os.path.join(args.outdir, "particles.ply"), args.particles, rng, args.offset, uniform=True)
    with open(os.path.join(args.outdir, "manifest.json"), "w") as f:
        json.dump({"name": "sphere_scale", "cloud_points": args.cloud, "particles": args.particles,
                   "truth": {"kind": "sphere", "center": [0, 0, 0], "radius": 1.0},
                   "noise_sigma": args.noise}, f, indent=1)


if __name__ == "__main__":
    main()
