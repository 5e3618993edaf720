#!/usr/bin/env python3
"""mlsproj beside the seed's solvers, PCL and CGAL: one table of times, accuracy and ratios (issue 3).

  python3 benches/compare.py [--repeats N]

Installs what it needs: pip numpy scipy numba plyfile; with apt, libpcl-dev (PCL peer) and
libcgal-dev libtbb-dev libeigen3-dev (CGAL peer), only for a peer not yet built in target/peers.
Builds the peers and mlsproj (release), then in one run: the seed's numba baselines, the
`seed_batch` bench, PCL and `mlsproj run` on sphere_seed, torus and saddle (distinct particles),
and PCL, CGAL and `mlsproj run` (1 and 2 threads) smoothing sphere_seed's cloud. Every output is
scored with ../shared/bench/score.py. Runs shorter than 2 s are repeated N times (default 3) and
their median run kept, as timings of a few tens of ms are noisy on a shared machine.
Prints one markdown table, also written to target/compare/table.md; a peer that cannot be
installed or built is skipped with a note there. Progress and step times go to stderr.
"""
import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from common import (BENCH, CGAL, MLSPROJ, PCL, ROOT, SHARED, TARGET, install_and_build, mlsproj_config,
                    run, shared_score, stage_times)

OUT = TARGET / "compare"
SETS = ["sphere_seed", "torus", "saddle"]
SMOOTHED = "sphere_seed"
# mlsproj's default weight (Broad), and PCL's own for a like-for-like comparison.
WEIGHTS = [None, "Gaussian"]
THREADS = 2
# Fractions of h tried, smallest first, for the rows at equal accuracy (see matched_row).
MATCH_SCALES = [0.5, 0.6, 0.7, 0.8, 0.9]
PIP = ["numpy", "scipy", "numba", "plyfile"]
# A run shorter than this is repeated; longer ones are timed once.
REPEAT_BELOW_S = 2.0


@dataclass
class Row:
    """One line of the table: a timed program (or solver) and, for a point output, its score.
    `cpu` / `seconds` shows how many cores a program really had on a shared machine."""
    what: str
    data: str
    threads: object
    seconds: float
    cpu: float = None
    reported: str = ""
    score: dict = field(default_factory=dict)
    weight: str = ""


NOTES = []
STEPS = []


def log(message):
    print(message, file=sys.stderr, flush=True)


def step(name):
    """Starts timing a step of the script; call the returned function when it ends."""
    started = time.perf_counter()
    log(f"== {name}")
    return lambda: STEPS.append((name, time.perf_counter() - started))


def timed(cmd, repeats):
    """Runs `cmd` once, or `repeats` times when it is short; returns the median run and the count."""
    runs = [run(cmd)]
    while runs[0].wall < REPEAT_BELOW_S and len(runs) < repeats:
        runs.append(run(cmd))
    return sorted(runs, key=lambda r: r.wall)[len(runs) // 2], len(runs)


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def manifest(name):
    return json.loads((BENCH / name / "manifest.json").read_text())


def score(name, ply):
    return shared_score(BENCH / name / "manifest.json", ply)


def install_python():
    done = step("pip install " + " ".join(PIP))
    try:
        import numba, numpy, plyfile, scipy  # noqa: F401
    except ImportError:
        run([sys.executable, "-m", "pip", "install", "-q", *PIP])
    done()


def seed_baselines():
    """numba's solves and the read floors on the seed's arrays. The environment may tune OpenBLAS
    for this machine (OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE); the baselines run with numpy's defaults."""
    done = step("seed_lstsq.py")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    result = run([sys.executable, SHARED / "peers/seed/seed_lstsq.py",
                  "--only", "numba_ragged,read_ragged,numba_normal,read_A_b"], env)
    done()
    return {j["name"]: j for j in json_lines(result.out)}


def our_batch():
    done = step("cargo bench --bench seed_batch")
    result = run(["cargo", "bench", "--manifest-path", ROOT / "Cargo.toml", "--bench", "seed_batch"])
    done()
    return {j["name"]: j for j in json_lines(result.out)}


def solver_rows(results, names, who):
    """Rows of in-process timings; numba's are parallel, numpy's reads single-threaded."""
    def threads(name):
        return results[name].get("threads") or (os.cpu_count() if name.startswith("numba") else 1)

    def data(name):
        return "10k × (200..1000, 6) ragged" if "ragged" in name else "10k × (1000, 6) dense"
    return [Row(f"{who} `{n}`", data(n), threads(n), results[n]["median_s"],
                reported=f"median of runs, {results[n]['min_s']:.4f}..{results[n]['max_s']:.4f} s")
            for n in names if n in results]


def repeated(n):
    return f"; median of {n}" if n > 1 else ""


def mlsproj_row(name, particles, threads, repeats, weight=None, radius_scale=1.0, extra=None):
    """`mlsproj run` on set `name` (`particles`: "File" or "Cloud") with the manifest's radius times
    `radius_scale`, `weight` (None: the default) and `extra` config fields (a label and the fields)."""
    set_dir = BENCH / name
    mode = "distinct" if particles == "File" else "smooth"
    scaled = "" if radius_scale == 1.0 else f"-r{radius_scale}"
    label, fields = extra or ("", "")
    tag = f"{name}-mlsproj-{mode}-{weight or 'default'}{scaled}-t{threads}{'-' + label if label else ''}"
    output = OUT / f"{tag}.ply"
    config = mlsproj_config(OUT / f"{tag}.ron", set_dir / "cloud.ply",
                            set_dir / "particles.ply" if particles == "File" else None, output,
                            f'support: Radius({manifest(name)["radius_h"] * radius_scale}), threads: {threads}'
                            + (f", weight: {weight}" if weight else "") + (f", {fields}" if fields else ""))
    result, n = timed([MLSPROJ, "run", config], repeats)
    _, stages = stage_times(result.out)
    weight = (weight or "default weight") + ("" if radius_scale == 1.0 else f", {radius_scale} h") \
        + (f", {label}" if label else "")
    return Row(f"mlsproj run ({mode}, {weight})", name, threads, result.wall, result.cpu,
               stages + repeated(n), score(name, output), weight)


# The seed's own arithmetic: a weighted quadratic fit around the particle itself, once, from its
# positions alone; what is left beside numba's solve is reading, searching and writing.
SEED_ARITHMETIC = ("seed arithmetic", "start: Particle, iterations: 1, normal_weight: 0.0")
LARGE = TARGET / "bench" / "sphere_large"


def large_row():
    """sphere_large (2M cloud, 1M particles, `Nearest(30)`, default config), generated with
    ../shared/bench/gen_data.py when missing: wall, CPU and peak RSS (from /usr/bin/time)."""
    if not (LARGE / "cloud.ply").is_file():
        done = step("gen_data.py sphere_large")
        run([sys.executable, SHARED / "bench/gen_data.py", LARGE.parent, "--only", "sphere_large"])
        done()
    output = OUT / "sphere_large-mlsproj.ply"
    config = mlsproj_config(OUT / "sphere_large.ron", LARGE / "cloud.ply", LARGE / "particles.ply", output,
                            "support: Nearest(30)")
    result = run(["/usr/bin/time", "-f", "peak_rss_kb %M", MLSPROJ, "run", config, "--quiet"])
    rss = next((int(line.split()[1]) for line in result.err.splitlines() if line.startswith("peak_rss_kb")), 0)
    _, stages = stage_times(result.out)
    row = Row("mlsproj run (distinct, Nearest(30), default config)", "sphere_large", THREADS, result.wall,
              result.cpu, f"{stages}; peak RSS {rss / 1024:.0f} MB",
              shared_score(LARGE / "manifest.json", output))
    return row, rss * 1024


MEASURED = {}


def measured_row(name, particles, repeats, scale):
    """`mlsproj_row` with the default weight at `scale` × h, each measurement made once per run."""
    key = (name, particles, repeats, scale)
    if key not in MEASURED:
        MEASURED[key] = mlsproj_row(name, particles, THREADS, repeats, None, scale)
    return MEASURED[key]


def matched_row(name, particles, peer, repeats):
    """mlsproj (default config) at the smallest radius of `MATCH_SCALES` × h whose RMS is at or below
    the peer's at h: the two at equal accuracy. None when no scale matches."""
    rms = lambda row: row.score.get("rms", float("inf"))
    for scale in MATCH_SCALES:
        if rms(measured_row(name, particles, 1, scale)) <= rms(peer):
            return measured_row(name, particles, repeats, scale)
    return None


def peer_row(what, name, threads, cmd, output, repeats, scored=None):
    """A C++ peer's run: its wall time and its own stage times (a JSON line on stderr); its output
    scored from `scored` (a copy readable by score.py) when given."""
    result, n = timed(cmd, repeats)
    seconds = {k[:-2]: v for k, v in json_lines(result.err)[-1].items() if k.endswith("_s")}
    stages = ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in seconds.items())
    return Row(what, name, threads, result.wall, result.cpu,
               f"{stages}, total {sum(seconds.values()) * 1e3:.0f} ms{repeated(n)}",
               score(name, scored(output) if scored else output))


def pcl_row(name, mode, repeats):
    set_dir = BENCH / name
    output = OUT / f"{name}-pcl-{mode}.ply"
    particles = set_dir / ("particles.ply" if mode == "distinct" else "cloud.ply")
    cmd = [PCL.binary, set_dir / "cloud.ply", particles, output, "--radius", manifest(name)["radius_h"],
           "--order", 2, "--mode", mode, "--threads", THREADS]
    return peer_row(f"PCL `--mode {mode}`", name, THREADS, cmd, output, repeats, with_nx)


def cgal_row(name, k, repeats):
    output = OUT / f"{name}-cgal-k{k}.ply"
    cmd = [CGAL.binary, BENCH / name / "cloud.ply", output, k]
    return peer_row(f"CGAL jet smoothing, K = {k}", name, os.cpu_count(), cmd, output, repeats)


def with_nx(ply):
    """PCL names its normals normal_x/y/z; a copy with nx/ny/nz lets score.py measure them."""
    from plyfile import PlyData, PlyElement
    vertex = PlyData.read(str(ply))["vertex"].data
    names = {"normal_x": "nx", "normal_y": "ny", "normal_z": "nz"}
    vertex.dtype.names = [names.get(n, n) for n in vertex.dtype.names]
    renamed = ply.with_name(ply.stem + "-nx.ply")
    PlyData([PlyElement.describe(vertex, "vertex")], text=False).write(str(renamed))
    return renamed


def ratio(num, den):
    return None if num is None or den is None else num / den


def batch_ratios(seed, ours):
    """The batched API against numba on the seed's systems, and against its own read floor."""
    median = lambda results, name: results.get(name, {}).get("median_s")
    solve = median(ours, "solve_ragged")
    return [
        ("mlsproj::least_squares solve_ragged / seed numba_ragged", ratio(solve, median(seed, "numba_ragged")),
         "≤ 0.5", lambda v: v <= 0.5),
        ("mlsproj::least_squares solve_ragged / its read floor", ratio(solve, median(ours, "read_ragged")),
         "≤ 1.5", lambda v: v <= 1.5),
        ("mlsproj::least_squares solve_dense / seed numba_normal",
         ratio(median(ours, "solve_dense"), median(seed, "numba_normal")), "(none)", None),
    ]


def versus(peer, label, ours, speedup):
    """Peer time / mlsproj time for each mlsproj weight; met when at least `speedup` at no worse RMS."""
    rms = lambda row: row.score.get("rms", float("inf"))
    return [(f"{label} ({row.weight}; RMS {fmt(rms(row))} vs {fmt(rms(peer))})",
             ratio(peer.seconds, row.seconds), f"≥ {speedup} at ≤ RMS",
             lambda v, row=row: v >= speedup and rms(row) <= rms(peer))
            for row in ours]


def fmt(value, digits=3):
    return "" if value is None else f"{value:.{digits}g}"


def table(rows, ratios, machine, command):
    lines = [f"Machine: {machine}. Command: `{command}`.", "",
             "| what | data | threads | wall (s) | CPU (s) | reported by the program | points (finite) "
             "| RMS | p95 | normal ° |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r.score
        points = f"{s['points']} ({s['finite']})" if s else ""
        lines.append(f"| {r.what} | {r.data} | {r.threads} | {r.seconds:.4f} | {fmt(r.cpu)} | {r.reported} | "
                     f"{points} | {fmt(s.get('rms'))} | {fmt(s.get('p95'))} | {fmt(s.get('normal_deg_mean'))} |")
    lines += ["", "| ratio | value | target | met |", "|---|---|---|---|"]
    for name, value, target, condition in ratios:
        met = "n/a" if value is None or condition is None else ("yes" if condition(value) else "no")
        lines.append(f"| {name} | {'n/a' if value is None else f'{value:.2f}'} | {target} | {met} |")
    lines += [""] + [f"- {n}" for n in NOTES]
    return "\n".join(lines).rstrip() + "\n"


def machine():
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU")
    return f"`nproc` = {os.cpu_count()}, {model}"


def load_average():
    """The 1-minute load average: how busy the shared machine was around a measurement."""
    return Path("/proc/loadavg").read_text().split()[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of a short command; the median is kept")
    args = parser.parse_args()
    if not BENCH.is_dir():
        sys.exit(f"compare.py: {BENCH} not found: the benchmark sets live in ../shared beside the repository")
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    install_python()
    done = step("peers")
    NOTES.extend(install_and_build([PCL, CGAL], log))
    done()
    done = step("cargo build --release")
    run(["cargo", "build", "--release", "--manifest-path", ROOT / "Cargo.toml"])
    done()
    load_before = load_average()

    seed = seed_baselines()
    ours = our_batch()
    rows = solver_rows(seed, ["numba_ragged", "read_ragged", "numba_normal", "read_A_b"], "seed")
    rows += solver_rows(ours, ["solve_ragged", "read_ragged", "solve_dense", "read_dense"], "mlsproj::least_squares")
    ratios = batch_ratios(seed, ours)

    done = step("distinct particles")
    distinct = {}
    for name in SETS:
        distinct[name] = [mlsproj_row(name, "File", THREADS, args.repeats, w) for w in WEIGHTS]
        rows += distinct[name]
        if PCL.ready():
            pcl = pcl_row(name, "distinct", args.repeats)
            rows.append(pcl)
            matched = [row for row in [matched_row(name, "File", pcl, args.repeats)] if row]
            rows += matched
            ratios += versus(pcl, f"PCL distinct / mlsproj, {name}", distinct[name] + matched, 100)
    ratios.insert(0, (f"mlsproj run {SMOOTHED} (wall, default weight) / seed numba_ragged",
                      ratio(distinct[SMOOTHED][0].seconds, seed.get("numba_ragged", {}).get("median_s")),
                      "≤ 1.0", lambda v: v <= 1.0))
    done()

    done = step("seed arithmetic and sphere_large")
    gaussian = distinct[SMOOTHED][1]
    arithmetic = mlsproj_row(SMOOTHED, "File", THREADS, args.repeats, "Gaussian", extra=SEED_ARITHMETIC)
    rows.append(arithmetic)
    numba = seed.get("numba_ragged", {}).get("median_s")
    ratios.insert(1, (f"mlsproj run {SMOOTHED} (wall, Gaussian) / seed numba_ragged",
                      ratio(gaussian.seconds, numba), "≤ 2.0", lambda v: v <= 2.0))
    ratios.insert(2, (f"mlsproj run {SMOOTHED} (wall, Gaussian, seed arithmetic) / seed numba_ragged",
                      ratio(arithmetic.seconds, numba), "≤ 1.0", lambda v: v <= 1.0))
    large, large_rss = large_row()
    rows.append(large)
    ratios.append(("sphere_large wall (s)", large.seconds, "< 2.0", lambda v: v < 2.0))
    ratios.append(("sphere_large peak RSS (GiB)", large_rss / 2**30, "< 1.0", lambda v: v < 1.0))
    done()

    done = step("smoothing")
    smooth = [mlsproj_row(SMOOTHED, "Cloud", THREADS, args.repeats, w) for w in WEIGHTS]
    one_thread = mlsproj_row(SMOOTHED, "Cloud", 1, args.repeats)
    rows += smooth + [one_thread]
    peers = []
    if PCL.ready():
        peers.append(("PCL smooth", pcl_row(SMOOTHED, "smooth", args.repeats)))
    if CGAL.ready():
        peers.append(("CGAL jet", cgal_row(SMOOTHED, manifest(SMOOTHED)["k"], args.repeats)))
    for label, row in peers:
        rows.append(row)
        matched = [ours for ours in [matched_row(SMOOTHED, "Cloud", row, args.repeats)] if ours]
        rows += [ours for ours in matched if ours not in rows]
        ratios += versus(row, f"{label} / mlsproj smooth, {SMOOTHED}", smooth + matched, 10)
    ratios.append((f"mlsproj smooth, 1 thread / {THREADS} threads (default weight)",
                   ratio(one_thread.seconds, smooth[0].seconds), "≥ 1.8", lambda v: v >= 1.8))
    done()

    NOTES.append("Wall: process time from start to exit, measured from Python; CPU: its user + system time "
                 "(CPU / wall = cores it really had). Solver rows: medians of the in-process runs of "
                 "seed_lstsq.py and `cargo bench --bench seed_batch`.")
    NOTES.append("mlsproj runs with its default weight (Broad) and with PCL's Gaussian; every program with "
                 "the manifest's radius (CGAL: the manifest's k) and order 2. PCL's normals are renamed "
                 "nx/ny/nz for scoring; CGAL writes none.")
    NOTES.append("Rows with a fraction of h: mlsproj's default config at the smallest radius of "
                 f"{', '.join(map(str, MATCH_SCALES))} × h whose RMS is at or below the peer's at h, "
                 "for the ratio at equal accuracy (with the cloud's normals in the fit, mlsproj reaches "
                 "PCL's RMS with fewer neighbours).")
    NOTES.append(f"1-minute load average: {load_before} before the measurements, {load_average()} after "
                 f"(the machine is shared: above 0 means other work competed for the {os.cpu_count()} cores).")
    text = table(rows, ratios, machine(), "python3 benches/compare.py")
    (OUT / "table.md").write_text(text)
    print(text)
    STEPS.append(("total", time.perf_counter() - started))
    log("step times: " + ", ".join(f"{n} {s:.0f} s" for n, s in STEPS))


if __name__ == "__main__":
    main()
