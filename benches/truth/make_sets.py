#!/usr/bin/env python3
"""Truth sets from meshes: a noisy scan of a known surface, particles near it.

  python3 benches/truth/make_sets.py [--out target/truth] [--only NAME,...]

The protocol of issue 6, the same for every shape:
- cloud.ply: 200,000 points sampled uniformly by area on the mesh, each moved
  along its face normal by Gaussian noise with σ = 0.2% of the bounding-box
  diagonal; float x y z nx ny nz, the normals being the true face normals;
- particles.ply: 20,000 other surface samples moved along the normal by a
  uniform offset in ±1% of the diagonal; float x y z;
- manifest.json: the noise, the diagonal, and the support radius h at which
  the median cloud point has 100 neighbours (itself included), plus the
  median count at the particles;
- mesh.ply: the true surface, for score.py.

Shapes, each of a different character:
- bunny, armadillo: organic scans (Stanford models, as shipped in CGAL's
  example data, Debian package libcgal-demo);
- fandisk: a CAD part with sharp convex and concave edges (CGAL data);
- bracket: an L-bracket with drilled holes, made here by CSG (manifold3d);
- fins: a plate with four fins 0.7% to 3% of the diagonal thick, thinner
  than the support, so that both faces of a fin fall into one neighbourhood;
- blade: a turbine blade (CGAL data) about 0.4% of its diagonal thick: the
  two faces are as close as two noise σ, the hardest case here;
- fingers: a ball with five round fingers of radius 0.6% to 2.6% of the
  diagonal (3 to 13 σ), an organic thin part (issue 12's orientation);
- bunny_outliers, fandisk_outliers: the clean cloud plus 5% outliers
  uniform in its bounding box grown by 10% (random unit normals), with the
  clean set's particles and support radius.
- bunny_pca, armadillo_pca, fandisk_pca: the clean cloud with its normals
  replaced by estimates, as a scanner's software would give them: the least
  principal axis of each point's 30 nearest neighbours, signed to agree with
  the true normal (11-17° off it on average), same particles and h.

Installs what it needs: pip numpy scipy plyfile trimesh manifold3d rtree, and
(apt, as root) libcgal-demo for the meshes. Seeded: the same sets every run.
"""
import argparse
import importlib.util
import json
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PIP = ["numpy", "scipy", "plyfile", "trimesh", "manifold3d", "rtree"]
CGAL_DATA = Path("/usr/share/doc/libcgal-dev/data.tar.gz")
CLOUD_POINTS = 200_000
PARTICLES = 20_000
NOISE = 0.002  # of the diagonal
OFFSET = 0.01  # of the diagonal
NEIGHBOURS = 100
OUTLIERS = 0.05


def ensure_python_packages():
    missing = [pkg for pkg in PIP if importlib.util.find_spec(pkg) is None]
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing], check=True)


def cgal_mesh(name, meshes):
    """A mesh of CGAL's example data, extracted once into `meshes`."""
    path = meshes / f"{name}.off"
    if not path.exists():
        if not CGAL_DATA.exists():
            subprocess.run(["apt-get", "install", "-y", "-q", "libcgal-demo"], check=True)
        meshes.mkdir(parents=True, exist_ok=True)
        with tarfile.open(CGAL_DATA) as tar:
            member = tar.getmember(f"data/meshes/{name}.off")
            path.write_bytes(tar.extractfile(member).read())
    import trimesh
    return trimesh.load(path, process=True)


def bracket():
    """An L-bracket: a base plate and an upright, two holes in the base and a
    larger one through the upright. Convex and concave sharp edges, flat
    faces and cylinders."""
    import trimesh
    from trimesh.creation import box, cylinder

    base = box((1.0, 0.6, 0.15), trimesh.transformations.translation_matrix((0, 0, 0.075)))
    upright = box((0.15, 0.6, 0.6), trimesh.transformations.translation_matrix((-0.425, 0, 0.3)))
    holes = [cylinder(0.07, 0.5, sections=96,
                      transform=trimesh.transformations.translation_matrix((0.2, y, 0.075)))
             for y in (-0.15, 0.15)]
    across = trimesh.transformations.rotation_matrix(1.5707963, (0, 1, 0), (0, 0, 0))
    across[:3, 3] = (-0.425, 0, 0.4)
    holes.append(cylinder(0.1, 0.5, sections=96, transform=across))
    solid = trimesh.boolean.union([base, upright], engine="manifold")
    return trimesh.boolean.difference([solid, *holes], engine="manifold")


def fins():
    """A plate with four parallel fins of growing thickness (0.01 to 0.045,
    the diagonal being about 1.5): at 100 neighbours the support radius is
    about 0.03, so the thinner fins put both faces into one support."""
    import trimesh
    from trimesh.creation import box

    parts = [box((1.0, 1.0, 0.1), trimesh.transformations.translation_matrix((0, 0, 0.05)))]
    for x, thickness in zip((-0.3, -0.1, 0.1, 0.3), (0.01, 0.02, 0.03, 0.045)):
        parts.append(box((thickness, 0.8, 0.4),
                         trimesh.transformations.translation_matrix((x, 0, 0.3))))
    return trimesh.boolean.union(parts, engine="manifold")



def fingers():
    """A ball of radius 0.3 with five capsules 0.5 long, radius 0.012 to
    0.05, spread round it and tilted up: the armadillo's fingers, made
    here, from as thin as three noise σ (the diagonal being about 1.9)."""
    import numpy as np
    import trimesh
    from trimesh.creation import capsule, icosphere

    parts = [icosphere(subdivisions=4, radius=0.3)]
    for k, radius in enumerate((0.012, 0.018, 0.025, 0.035, 0.05)):
        finger = capsule(height=0.5, radius=radius, count=[32, 32])
        angle = 2 * np.pi * k / 5
        direction = np.array([np.cos(angle), np.sin(angle), 0.3])
        direction /= np.linalg.norm(direction)
        finger.apply_transform(trimesh.geometry.align_vectors([0, 0, 1], direction))
        finger.apply_translation(direction * 0.45)
        parts.append(finger)
    return trimesh.boolean.union(parts, engine="manifold")

SHAPES = {
    "bunny": ("organic", lambda m: cgal_mesh("bunny00", m)),
    "armadillo": ("organic", lambda m: cgal_mesh("armadillo", m)),
    "fandisk": ("cad", lambda m: cgal_mesh("fandisk", m)),
    "bracket": ("cad", lambda m: bracket()),
    "fins": ("thin", lambda m: fins()),
    "blade": ("thin", lambda m: cgal_mesh("blade", m)),
    "fingers": ("thin", lambda m: fingers()),
}
WITH_OUTLIERS = ("bunny", "fandisk")
WITH_PCA_NORMALS = ("bunny", "armadillo", "fandisk")
PCA_NEIGHBOURS = 30


def write_ply(path, points, normals=None):
    """Float x y z (and nx ny nz) as binary PLY, as ../shared/bench/gen_data.py writes its sets."""
    sys.path.insert(0, str(ROOT.parent / "shared" / "bench"))
    from gen_data import write_ply as shared_write_ply

    shared_write_ply(str(path), points, normals)


def support_radius(cloud, particles, rng):
    """h at which the median cloud point has `NEIGHBOURS` points within h
    (itself included), and the median count within h at the particles."""
    import numpy as np
    from scipy.spatial import cKDTree

    tree = cKDTree(cloud)
    sample = cloud[rng.choice(len(cloud), 4000, replace=False)]
    distances, _ = tree.query(sample, NEIGHBOURS)
    h = float(np.median(distances[:, -1]))
    at_particles = tree.query_ball_point(particles[:4000], h, return_length=True)
    return h, int(np.median(at_particles))


def make_set(out, name, kind, mesh, seed):
    import numpy as np
    import trimesh

    rng = np.random.default_rng(seed)
    diagonal = float(np.linalg.norm(mesh.bounds[1] - mesh.bounds[0]))
    sigma = NOISE * diagonal
    points, faces = trimesh.sample.sample_surface(mesh, CLOUD_POINTS, seed=seed)
    normals = mesh.face_normals[faces]
    cloud = points + normals * rng.normal(0, sigma, (CLOUD_POINTS, 1))
    feet, faces = trimesh.sample.sample_surface(mesh, PARTICLES, seed=seed + 1)
    particles = feet + mesh.face_normals[faces] * rng.uniform(-OFFSET, OFFSET, (PARTICLES, 1)) * diagonal
    h, at_particles = support_radius(cloud, particles, rng)
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    mesh.export(folder / "mesh.ply")
    write_ply(folder / "cloud.ply", cloud, normals)
    write_ply(folder / "particles.ply", particles)
    manifest = dict(name=name, kind=kind, mesh="mesh.ply", diagonal=diagonal, noise_sigma=sigma,
                    particle_offset=OFFSET * diagonal, radius_h=h, neighbours_at_cloud=NEIGHBOURS,
                    neighbours_at_particles=at_particles, cloud_points=CLOUD_POINTS, particles=PARTICLES)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    print(f"{name:<18} {kind:<8} diagonal {diagonal:.4g}  σ {sigma:.3g}  h {h:.4g} "
          f"({h / sigma:.1f} σ; median {at_particles} neighbours at the particles)")
    return cloud, normals, manifest


def add_outliers(out, name, cloud, normals, manifest, seed):
    """The clean set with 5% outliers added: same particles, mesh and h."""
    import numpy as np
    from plyfile import PlyData

    rng = np.random.default_rng(seed)
    lo, hi = cloud.min(0), cloud.max(0)
    centre, half = (lo + hi) / 2, (hi - lo) / 2 * 1.1
    count = int(OUTLIERS * len(cloud))
    stray = centre + rng.uniform(-1, 1, (count, 3)) * half
    stray_normals = rng.normal(size=(count, 3))
    stray_normals /= np.linalg.norm(stray_normals, axis=1, keepdims=True)
    clean = out / manifest["name"]
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mesh.ply").write_bytes((clean / "mesh.ply").read_bytes())
    (folder / "particles.ply").write_bytes((clean / "particles.ply").read_bytes())
    write_ply(folder / "cloud.ply", np.vstack([cloud, stray]), np.vstack([normals, stray_normals]))
    PlyData.read(str(folder / "cloud.ply"))  # fail here, not in a run, if it is unreadable
    noisy = dict(manifest, name=name, clean=manifest["name"], outliers=count,
                 cloud_points=len(cloud) + count)
    (folder / "manifest.json").write_text(json.dumps(noisy, indent=2))
    print(f"{name:<18} +{count} outliers in the bounding box grown by 10%")


def add_pca_normals(out, name, cloud, normals, manifest):
    """The clean set with normals estimated from the noisy points: same
    positions, particles, mesh and h."""
    import numpy as np
    from scipy.spatial import cKDTree

    _, neighbours = cKDTree(cloud).query(cloud, PCA_NEIGHBOURS)
    estimated = np.empty_like(cloud)
    for block in range(0, len(cloud), 20_000):
        patch = cloud[neighbours[block:block + 20_000]]
        patch = patch - patch.mean(axis=1, keepdims=True)
        _, axes = np.linalg.eigh(np.einsum("nki,nkj->nij", patch, patch))
        estimated[block:block + 20_000] = axes[:, :, 0]
    estimated *= np.sign(np.sum(estimated * normals, axis=1))[:, None]
    clean = out / manifest["name"]
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mesh.ply").write_bytes((clean / "mesh.ply").read_bytes())
    (folder / "particles.ply").write_bytes((clean / "particles.ply").read_bytes())
    write_ply(folder / "cloud.ply", cloud, estimated)
    angle = np.degrees(np.arccos(np.clip(np.sum(estimated * normals, axis=1), -1, 1))).mean()
    (folder / "manifest.json").write_text(json.dumps(dict(manifest, name=name, clean=manifest["name"],
                                                          normals=f"PCA of {PCA_NEIGHBOURS} nearest",
                                                          normal_error_deg=float(angle)), indent=2))
    print(f"{name:<18} normals by PCA of the {PCA_NEIGHBOURS} nearest: {angle:.1f}° off on average")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "target" / "truth")
    parser.add_argument("--only", help="comma-separated shape names")
    args = parser.parse_args()
    ensure_python_packages()
    only = set(args.only.split(",")) if args.only else None
    for seed, (name, (kind, build)) in enumerate(SHAPES.items()):
        if only and not only & {name, f"{name}_outliers", f"{name}_pca"}:
            continue
        mesh = build(args.out / "meshes")
        cloud, normals, manifest = make_set(args.out, name, kind, mesh, 1000 * (seed + 1))
        if name in WITH_OUTLIERS:
            add_outliers(args.out, f"{name}_outliers", cloud, normals, manifest, 1000 * (seed + 1) + 7)
        if name in WITH_PCA_NORMALS:
            add_pca_normals(args.out, f"{name}_pca", cloud, normals, manifest)


if __name__ == "__main__":
    main()
