"""What the comparison scripts share: paths, running a program, mlsproj's config and stage times,
the shared scorer, and the C++ peers of ../shared/peers with their apt packages.

Imported by benches/compare.py and benches/truth/run.py (standard library only, so that it can be
imported before the scripts install their packages).
"""
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
BENCH = SHARED / "bench"
TARGET = ROOT / "target"
PEERS = TARGET / "peers"
MLSPROJ = TARGET / "release" / "mlsproj"


@dataclass
class Done:
    """A finished command: wall and CPU seconds (user + system, all its threads), output, exit code."""
    wall: float
    cpu: float
    out: str
    err: str
    code: int


def last_line(text):
    lines = text.strip().splitlines()
    return lines[-1] if lines else "(no message)"


def run(cmd, env=None, check=True):
    """Runs `cmd` to its exit; raises on failure when `check`."""
    cpu = lambda r: r.ru_utime + r.ru_stime
    before = cpu(resource.getrusage(resource.RUSAGE_CHILDREN))
    started = time.perf_counter()
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({done.returncode}): "
                           f"{last_line(done.stderr or done.stdout)}")
    return Done(wall, cpu(resource.getrusage(resource.RUSAGE_CHILDREN)) - before,
                done.stdout, done.stderr, done.returncode)


def ron_string(path):
    """A path as a RON string (written as a JSON one: quotes and backslashes escaped)."""
    return json.dumps(str(path))


def mlsproj_config(path, cloud, particles, output, fields):
    """Writes an mlsproj config to `path`: `particles` a file, or None for `particles: Cloud`, then
    `fields` (RON, e.g. "support: Radius(0.1), threads: 2")."""
    part = f"File({ron_string(particles)})" if particles else "Cloud"
    path.write_text(f"(cloud: {ron_string(cloud)}, particles: {part}, output: {ron_string(output)}, "
                    f"{fields})\n")
    return path


def stage_times(stdout):
    """The `time:` line of `mlsproj run` as {stage: seconds}, and the line itself."""
    line = re.search(r"^time: (.*)$", stdout, re.M)
    if not line:
        return {}, ""
    stages = {name: float(ms) / 1000 for name, ms in re.findall(r"(\w+) ([0-9.]+) ms", line.group(1))}
    return stages, line.group(1)


def shared_score(manifest, ply):
    """../shared/bench/score.py on an output, as a dict."""
    return json.loads(run([sys.executable, BENCH / "score.py", manifest, ply, "--json"]).out)


@dataclass
class Peer:
    """A C++ peer from ../shared/peers: its apt packages, build script and binary."""
    name: str
    packages: list
    build: Path
    binary: Path
    note: str = ""

    def ready(self):
        return self.binary.is_file() and not self.note


PCL = Peer("PCL MovingLeastSquares", ["libpcl-dev"], SHARED / "peers/pcl_mls/build.sh", PEERS / "mls_project")
CGAL = Peer("CGAL jet_smooth_point_set", ["libcgal-dev", "libtbb-dev", "libeigen3-dev"],
            SHARED / "peers/cgal_jet/build.sh", PEERS / "jet_smooth")


def install_and_build(peers, log=lambda message: print(message, file=sys.stderr, flush=True)):
    """Installs the packages of each peer not yet built (apt), then builds it; a failure is set as
    the peer's note. Returns the notes."""
    missing = [p for p in peers if not p.binary.is_file()]
    if missing:
        log("== apt-get install " + " ".join(pkg for p in missing for pkg in p.packages))
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        # Waits for a dpkg lock held by another install instead of failing at once.
        apt = ["apt-get", "-o", "DPkg::Lock::Timeout=600"]
        status = run([*apt, "update"], env, check=False) if shutil.which("apt-get") else \
            Done(0, 0, "", "no apt-get on this machine", 1)
        for peer in missing:
            if status.code == 0:
                status = run([*apt, "install", "-y", *peer.packages], env, check=False)
            if status.code != 0:
                peer.note = f"{peer.name} skipped: apt-get install {' '.join(peer.packages)} failed: " \
                            f"{last_line(status.err)}"
    PEERS.mkdir(parents=True, exist_ok=True)
    for peer in missing:
        if peer.note:
            continue
        log(f"== build {peer.binary.name}")
        built = run(["sh", peer.build, peer.binary], check=False)
        if built.code != 0:
            peer.note = f"{peer.name} skipped: its build failed: {last_line(built.err)}"
    return [p.note for p in peers if p.note]
