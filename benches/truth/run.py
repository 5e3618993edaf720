#!/usr/bin/env python3
"""mlsproj (plain and robust) and PCL on the truth sets: one accuracy table.

  python3 benches/truth/run.py [--only SET,...] [--variant NAME=FIELDS ...]
                               [--no-pcl] [--no-large] [--threads N]

Builds the sets first if they are missing (make_sets.py), and the PCL peer
into target/peers/mls_project if it is missing (apt libpcl-dev). Expects
target/release/mlsproj (cargo build --release). On each set, at the set's
support radius h:
- plain:  mlsproj with the default config and `support: Radius(h)`;
- robust: the same with `robust: Rimls`;
- positions: the plain config with `normal_weight: 0`, the cloud's normals
  left out of the fit (what a cloud without normals gets);
- PCL:    pcl::MovingLeastSquares, order 2, Gaussian weight, search radius
          h, DISTINCT_CLOUD (each particle projected with the fit of its
          nearest cloud point).
Every output is scored against the mesh by score.py. Prints one markdown
table (also target/truth/table.md): RMS, p95 and max distance, as multiples
of the set's noise σ, mean normal error in degrees, the time of the
projection stage (mlsproj's `project`, PCL's `mls_s`), and the particles
that were not projected (mlsproj: status other than ok / lower_degree; PCL:
dropped). Then the outlier experiment (RMS with 5% outliers against the clean
cloud, robust target ≤ 1.5×), and the mlsproj columns on ../shared/bench's
sphere_seed, torus and saddle (radius from the manifest) and sphere_large
(`support: Nearest(30)`, targets RMS ≤ σ/2, max ≤ 3σ; generated into
target/bench if missing), scored by ../shared/bench/score.py.

--variant adds (or, with a name already used, replaces) an mlsproj column:
e.g. --variant "nearest=start: NearestPoint" --variant "two=iterations: 2".
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from common import BENCH, MLSPROJ, PCL, TARGET, install_and_build, mlsproj_config, run, shared_score, \
    stage_times  # noqa: E402

TRUTH = TARGET / "truth"
LARGE = TARGET / "bench" / "sphere_large"
SETS = ["bunny", "armadillo", "fandisk", "bracket", "fins", "blade", "bunny_outliers", "fandisk_outliers",
        "bunny_pca", "armadillo_pca", "fandisk_pca"]
VARIANTS = {"plain": "", "robust": "robust: Rimls", "positions": "normal_weight: 0"}
sys.path.insert(0, str(HERE))
from score import score  # noqa: E402


def run_mlsproj(cloud, particles, output, fields, threads):
    """Runs mlsproj; returns the time of its project stage in seconds."""
    config = mlsproj_config(output.with_suffix(".ron"), cloud, particles, output,
                            f"threads: {threads}, {fields}")
    stages, _ = stage_times(run([MLSPROJ, "run", config]).out)
    return stages["project"]


def unprojected(result):
    """Particles left where they were: mlsproj statuses 3..5 (too few
    neighbours, invalid, rejected), or those PCL dropped."""
    statuses = result.get("statuses")
    if statuses is None:
        return result["expected"] - result["points"]
    return sum(n for code, n in statuses.items() if code >= 3)


def row(name, method, result, seconds):
    sigma = result["sigma"]
    return (f"| {name} | {method} | {result['rms'] / sigma:.3f} | {result['p95'] / sigma:.3f} | "
            f"{result['max'] / sigma:.2f} | {result.get('normal_deg_mean', float('nan')):.2f} | "
            f"{seconds:.2f} | {unprojected(result)} | {result.get('statuses', {}).get(2, '')} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only")
    parser.add_argument("--variant", action="append", default=[])
    parser.add_argument("--no-pcl", action="store_true")
    parser.add_argument("--no-large", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not MLSPROJ.exists():
        raise SystemExit("no target/release/mlsproj: cargo build --release first")
    variants = dict(VARIANTS)
    for spec in args.variant:
        name, _, fields = spec.partition("=")
        variants[name] = fields
    sets = args.only.split(",") if args.only else SETS
    missing = [s for s in sets if not (TRUTH / s / "manifest.json").exists()]
    if missing:
        subprocess.run([sys.executable, str(HERE / "make_sets.py"), "--only", ",".join(missing)], check=True)
    pcl = False
    if not args.no_pcl:
        for note in install_and_build([PCL]):
            print(note, file=sys.stderr)
        pcl = PCL.ready()
    work = TRUTH / "runs"
    work.mkdir(parents=True, exist_ok=True)

    lines = ["| set | method | RMS/σ | p95/σ | max/σ | normal ° | time s | not projected | not converged |",
             "|---|---|---|---|---|---|---|---|---|"]
    scores = {}
    for name in sets:
        folder = TRUTH / name
        manifest = json.loads((folder / "manifest.json").read_text())
        h = manifest["radius_h"]
        cloud, particles = folder / "cloud.ply", folder / "particles.ply"
        for method, fields in variants.items():
            output = work / f"{name}-{method}.ply"
            seconds = run_mlsproj(cloud, particles, output, f"support: Radius({h}), {fields}", args.threads)
            scores[name, method] = result = score(folder, output)
            lines.append(row(name, method, result, seconds))
            print(lines[-1], file=sys.stderr)
        if pcl:
            output = work / f"{name}-pcl.ply"
            done = run([PCL.binary, cloud, particles, output, "--radius", h, "--threads", args.threads])
            seconds = json.loads(done.err.strip().splitlines()[-1])["mls_s"]
            scores[name, "PCL"] = result = score(folder, output)
            lines.append(row(name, "PCL", result, seconds))
            print(lines[-1], file=sys.stderr)

    outlier_lines = []
    for name in sets:
        clean = name.removesuffix("_outliers")
        if clean == name or clean not in sets:
            continue
        outlier_lines.append(f"\n{name}: RMS with 5% outliers / RMS on the clean cloud "
                             "(robust target ≤ 1.5)")
        for method in [*variants, "PCL"]:
            if (name, method) in scores:
                ratio = scores[name, method]["rms"] / scores[clean, method]["rms"]
                outlier_lines.append(f"- {method}: {ratio:.2f}")

    # The shared benchmark sets (analytic truth): accuracy and time cost of
    # the options there too; sphere_large with its own targets.
    bench_lines = ["\n| shared set | method | RMS/σ | p95/σ | max/σ | normal ° | project s |",
                   "|---|---|---|---|---|---|---|"]
    benches = [(BENCH / name, None) for name in ("sphere_seed", "torus", "saddle")]
    if not args.no_large:
        if not (LARGE / "manifest.json").exists():
            subprocess.run([sys.executable, str(BENCH / "gen_data.py"), str(LARGE.parent),
                            "--only", "sphere_large"], check=True)
        benches.append((LARGE, "Nearest(30)"))
    large_lines = []
    for folder, support in benches:
        manifest = json.loads((folder / "manifest.json").read_text())
        support = support or f"Radius({manifest['radius_h']})"
        sigma = manifest["noise_sigma"]
        for method, fields in variants.items():
            output = work / f"{folder.name}-{method}.ply"
            seconds = run_mlsproj(folder / "cloud.ply", folder / "particles.ply", output,
                                  f"support: {support}, {fields}", args.threads)
            result = shared_score(folder / "manifest.json", output)
            bench_lines.append(f"| {folder.name} | {method} | {result['rms'] / sigma:.3f} | "
                               f"{result['p95'] / sigma:.3f} | {result['max'] / sigma:.2f} | "
                               f"{result.get('normal_deg_mean', float('nan')):.3f} | {seconds:.2f} |")
            print(bench_lines[-1], file=sys.stderr)
            if folder == LARGE:
                verdict = "met" if result["rms"] <= sigma / 2 and result["max"] <= 3 * sigma else "MISSED"
                large_lines.append(f"- sphere_large, {method}: RMS {result['rms'] / sigma:.3f} σ (target ≤ 0.5), "
                                   f"max {result['max'] / sigma:.2f} σ (target ≤ 3): {verdict}")
    if large_lines:
        large_lines.insert(0, "\nsphere_large (support: Nearest(30)):")

    text = "\n".join(lines + outlier_lines + bench_lines + large_lines) + "\n"
    (TRUTH / "table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
