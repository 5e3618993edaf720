#!/usr/bin/env python3
"""LAZ beside binary PLY and beside laspy + lazrs, in one run (issue 14).

  python3 benches/laz_read.py [--repeats N] [--big POINTS]

Makes target/bench/laz/: sphere_large (../shared/bench/gen_data.py: 2M points with float normals,
100k of its particles) as binary PLY, and as LAS 1.4 and LAZ (point format 6, scale 1e-7, normals
as float extra bytes `nx ny nz`) written by laspy. Builds mlsproj and the `read_points` bench, then,
alternating the programs in each of N rounds (default 5) so that the load of a shared machine falls
on all of them alike:
  - read: laspy.read with the LazrsParallel backend and the scaled x y z taken, against the
    `read_points` bench (the whole file, with and without attributes, as `run` reads its cloud) on
    the LAZ and on the PLY, and the same on an airborne-like LAZ (target/bench/laz/airborne.laz,
    made by laspy: scan lines at mm scale with GPS time, intensity, returns, classification);
  - job: `mlsproj run` of the same job (Nearest(30)) with its cloud from PLY, LAZ and LAS.
Wall and CPU seconds (user + system, all threads: in-process for the reads, getrusage of the child
for the jobs); the tables give medians, and the best wall of the N. With --big N, also writes an
N-point sphere (the same noise, no particles beyond the 100k) as LAS, LAZ and PLY and runs the job on
each once under /usr/bin/time for its peak memory, then deletes them.
Prints markdown tables, also written to target/bench/laz/table.md. Needs numpy, plyfile, laspy and
lazrs (pip).
"""
import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from common import BENCH, MLSPROJ, ROOT, TARGET, mlsproj_config, run, stage_times

OUT = TARGET / "bench" / "laz"
THREADS = 2
# laspy in a child process, timed around the read alone (imports excluded).
LASPY = """
import json, sys, time, laspy
wall, cpu = time.perf_counter(), time.process_time()
las = laspy.read(sys.argv[1], laz_backend=laspy.LazBackend.LazrsParallel)
x, y, z = las.x, las.y, las.z
print(json.dumps(dict(points=len(las.points), wall=time.perf_counter() - wall,
                      cpu=time.process_time() - cpu)))
"""
# Writes a float x y z nx ny nz PLY as LAS 1.4 / LAZ point format 6 with the normals as extra bytes.
CONVERT = """
import sys, numpy as np, laspy
from plyfile import PlyData
v = PlyData.read(sys.argv[1])["vertex"].data
h = laspy.LasHeader(point_format=6, version="1.4")
h.scales = np.array([1e-7] * 3); h.offsets = np.zeros(3)
h.add_extra_dims([laspy.ExtraBytesParams(name=n, type=np.float32) for n in ("nx", "ny", "nz")])
las = laspy.LasData(h)
las.x, las.y, las.z = v["x"], v["y"], v["z"]
las.nx, las.ny, las.nz = v["nx"], v["ny"], v["nz"]
for out in sys.argv[2:]:
    las.write(out, laz_backend=laspy.LazBackend.LazrsParallel)
"""
# An airborne-like LAZ: 2M points along scan lines of a 500 m x 250 m tile at mm scale, ground and
# vegetation, with GPS time, intensity, returns, classification, scan angle and flight line.
AIRBORNE = """
import sys, numpy as np, laspy
n, rng = 2_000_000, np.random.default_rng(3)
h = laspy.LasHeader(point_format=6, version="1.4")
h.scales = np.array([1e-3] * 3); h.offsets = np.array([600000.0, 4000000.0, 0.0])
las = laspy.LasData(h)
t = np.arange(n)
las.x = 600000 + (t % 2000) * 0.25 + rng.normal(0, 0.02, n)
las.y = 4000000 + (t // 2000) * 0.25 + rng.normal(0, 0.02, n)
las.z = 100 + 5 * np.sin(las.x / 50) + np.where(rng.random(n) < 0.3, rng.uniform(0, 20, n), 0)
las.gps_time = 300000 + t * 1e-5
las.intensity = rng.integers(0, 4000, n).astype(np.uint16)
returns = rng.integers(1, 4, n)
las.number_of_returns = returns
las.return_number = np.minimum(rng.integers(1, 4, n), returns)
las.classification = np.where(las.z > 106, 5, 2).astype(np.uint8)
las.scan_angle = rng.integers(-3000, 3000, n).astype(np.int16)
las.point_source_id = (t // 500000 + 1).astype(np.uint16)
las.write(sys.argv[1], laz_backend=laspy.LazBackend.LazrsParallel)
"""
# An N-point noisy unit sphere with its normals as float PLY (numpy only; sphere_large's noise).
SPHERE = """
import sys, numpy as np
n, out = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(14)
v = rng.normal(size=(n, 3)); v /= np.linalg.norm(v, axis=1)[:, None]
p = v * (1 + rng.normal(0, 0.001, size=(n, 1)))
rec = np.empty(n, dtype=[(k, "<f4") for k in ("x", "y", "z", "nx", "ny", "nz")])
for i, k in enumerate("xyz"):
    rec[k], rec["n" + k] = p[:, i], v[:, i]
with open(out, "wb") as f:
    f.write(f"ply\\nformat binary_little_endian 1.0\\nelement vertex {n}\\n".encode())
    f.write("".join(f"property float {k}\\n" for k in rec.dtype.names).encode() + b"end_header\\n")
    f.write(rec.tobytes())
"""


def log(message):
    print(message, file=sys.stderr, flush=True)


def python(script, *args):
    return run([sys.executable, "-c", script, *args])


def data():
    """sphere_large as PLY, LAS and LAZ, and 100k of its particles, made once."""
    sphere = OUT / "sphere_large"
    if not (sphere / "cloud.ply").is_file():
        log("== gen_data.py sphere_large")
        run([sys.executable, BENCH / "gen_data.py", OUT, "--only", "sphere_large"])
    particles = OUT / "particles100k.ply"
    if not particles.is_file():
        python("from plyfile import PlyData, PlyElement\n"
               "import sys\n"
               "p = PlyData.read(sys.argv[1])['vertex'].data[:100000]\n"
               "PlyData([PlyElement.describe(p, 'vertex')], text=False, byte_order='<').write(sys.argv[2])",
               sphere / "particles.ply", particles)
    if not (sphere / "cloud.laz").is_file():
        log("== laspy: cloud.las, cloud.laz")
        python(CONVERT, sphere / "cloud.ply", sphere / "cloud.las", sphere / "cloud.laz")
    airborne = OUT / "airborne.laz"
    if not airborne.is_file():
        log("== laspy: airborne.laz")
        python(AIRBORNE, airborne)
    return {kind: sphere / f"cloud.{kind}" for kind in ("ply", "laz", "las")}, particles, airborne


def build():
    """Builds mlsproj and the read_points bench; returns the bench's executable."""
    log("== cargo build --release; cargo bench --bench read_points --no-run")
    run(["cargo", "build", "--release", "--quiet"])
    built = run(["cargo", "bench", "--bench", "read_points", "--no-run", "--message-format=json"])
    for line in built.out.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and message["target"]["name"] == "read_points":
            return Path(message["executable"])
    raise RuntimeError("cargo did not report the read_points executable")


def ours(bench, path, *options):
    _, points, wall, cpu = run([bench, *options, path]).out.split()
    return dict(points=int(points), wall=float(wall), cpu=float(cpu))


def job(cloud, particles, kind):
    config = mlsproj_config(OUT / f"job_{kind}.ron", cloud, particles, OUT / f"out_{kind}.ply",
                            f"support: Nearest(30), threads: {THREADS}")
    done = run([MLSPROJ, "run", "-q", config])
    stages, _ = stage_times(done.out)
    return dict(wall=done.wall, cpu=done.cpu, load=stages.get("load", float("nan")))


def summary(runs):
    walls, cpus = [r["wall"] for r in runs], [r["cpu"] for r in runs]
    return dict(wall=statistics.median(walls), best=min(walls), cpu=statistics.median(cpus),
                **{k: statistics.median(r[k] for r in runs) for k in runs[0] if k not in ("wall", "cpu")})


def big_memory(points, particles):
    """The job on an N-point sphere from LAS, LAZ and PLY, once each: peak memory and times."""
    folder = OUT / f"sphere_{points}"
    folder.mkdir(parents=True, exist_ok=True)
    files = {kind: folder / f"cloud.{kind}" for kind in ("ply", "las", "laz")}
    try:
        log(f"== {points} points: PLY, then LAS and LAZ with laspy")
        python(SPHERE, str(points), files["ply"])
        python(CONVERT, files["ply"], files["las"], files["laz"])
        rows = []
        for kind, cloud in files.items():
            config = mlsproj_config(folder / f"job_{kind}.ron", cloud, particles, folder / f"out_{kind}.ply",
                                    f"support: Nearest(30), threads: {THREADS}")
            done = run(["/usr/bin/time", "-f", "%M", MLSPROJ, "run", "-q", config])
            peak_kib = int(done.err.strip().splitlines()[-1])
            stages, _ = stage_times(done.out)
            rows.append((kind, done.wall, done.cpu, stages.get("load", float("nan")), peak_kib / 2**20))
            log(f"   {kind}: {done.wall:.2f} s wall, {done.cpu:.2f} s CPU, {peak_kib / 2**20:.2f} GiB")
        return rows
    finally:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--big", type=int, default=0, help="also run an N-point cloud for peak memory")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    clouds, particles, airborne = data()
    bench = build()
    reads = {"laspy + lazrs (LazrsParallel), LAZ": [], "mlsproj, LAZ": [],
             "mlsproj, LAZ, without attributes": [], "mlsproj, binary PLY": [],
             "laspy + lazrs (LazrsParallel), airborne LAZ": [], "mlsproj, airborne LAZ": [],
             "mlsproj, airborne LAZ, without attributes": []}
    jobs = {kind: [] for kind in clouds}
    for round_ in range(args.repeats):
        log(f"== round {round_ + 1} of {args.repeats}")
        reads["laspy + lazrs (LazrsParallel), LAZ"].append(json.loads(python(LASPY, clouds["laz"]).out))
        reads["mlsproj, LAZ"].append(ours(bench, clouds["laz"]))
        reads["mlsproj, LAZ, without attributes"].append(ours(bench, clouds["laz"], "--skip-attributes"))
        reads["mlsproj, binary PLY"].append(ours(bench, clouds["ply"]))
        reads["laspy + lazrs (LazrsParallel), airborne LAZ"].append(json.loads(python(LASPY, airborne).out))
        reads["mlsproj, airborne LAZ"].append(ours(bench, airborne))
        reads["mlsproj, airborne LAZ, without attributes"].append(
            ours(bench, airborne, "--skip-attributes"))
        for kind in clouds:
            jobs[kind].append(job(clouds[kind], particles, kind))
    lines = [f"Reads of sphere_large and of the airborne-like LAZ (2M points each; median of "
             f"{args.repeats}, alternated; vs laspy: laspy's wall over this one's, on the same file):", "",
             "| reader | wall s | best wall s | CPU s | Mpoints/s (median wall) | vs laspy |",
             "|---|---|---|---|---|---|"]
    for name, runs in reads.items():
        s = summary(runs)
        laspy = "laspy + lazrs (LazrsParallel), " + ("airborne LAZ" if "airborne" in name else "LAZ")
        laspy_wall = summary(reads[laspy])["wall"]
        lines.append(f"| {name} | {s['wall']:.3f} | {s['best']:.3f} | {s['cpu']:.2f} | "
                     f"{s['points'] / s['wall'] / 1e6:.2f} | {laspy_wall / s['wall']:.2f}× |")
    ply_wall = summary(jobs["ply"])["wall"]
    lines += ["", f"Job: cloud sphere_large, 100k particles, Nearest(30), {THREADS} threads "
              f"(median of {args.repeats}, alternated):", "",
              "| cloud | wall s | best wall s | CPU s | load s | wall vs PLY |", "|---|---|---|---|---|---|"]
    for kind, runs in jobs.items():
        s = summary(runs)
        lines.append(f"| {kind.upper()} | {s['wall']:.2f} | {s['best']:.2f} | {s['cpu']:.2f} | "
                     f"{s['load']:.2f} | {s['wall'] / ply_wall:.2f}× |")
    if args.big:
        rows = big_memory(args.big, particles)
        ply = next(row for row in rows if row[0] == "ply")
        lines += ["", f"Job on {args.big:,} points, 100k particles, once each:", "",
                  "| cloud | wall s | CPU s | load s | peak memory GiB | wall vs PLY |", "|---|---|---|---|---|---|"]
        lines += [f"| {kind.upper()} | {wall:.1f} | {cpu:.1f} | {load:.1f} | {peak:.2f} | {wall / ply[1]:.2f}× |"
                  for kind, wall, cpu, load, peak in rows]
    table = "\n".join(lines) + "\n"
    (OUT / "table.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
