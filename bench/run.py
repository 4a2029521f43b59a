#!/usr/bin/env python3
"""Benchmark haul side by side with aria2c, curl, wget2 and axel on loopback.

This driver owns the whole benchmark: it installs the peer tools (Debian
packages), generates deterministic fixtures under /tmp/haul-bench/data, runs nginx (config
from bench/nginx.conf.in, with an HTTPS + HTTP/2 port whose certificate comes from a private CA
made at setup), the socket-pacing relay (bench/pacer.py) and, for W1L/W7L, the latency relay
(bench/latency.py) on 127.0.0.1 only,
downloads into a tmpfs, times every run with GNU time, checks every output's sha256
(untimed), and writes a markdown report into the marked section of BENCHMARKS.md.

It must not touch haul's sources, must not send a byte beyond 127.0.0.1, and must leave
the machine as it found it: nginx, the relay and any tool still running are stopped, and
the tmpfs is unmounted if this script mounted it, on success, on error and on Ctrl-C.
Every wait is bounded. Stdlib only.
"""
import argparse
import ctypes
import dataclasses
import datetime
import fcntl
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
ROOT = Path("/tmp/haul-bench")
DATA = ROOT / "data"
OUT = ROOT / "out"
NGX = ROOT / "nginx"
LISTS = ROOT / "lists"
LOGS = ROOT / "logs"
ACCESS_LOG = NGX / "access.log"
TLS_DIR = NGX / "tls"
CA_CERT = TLS_DIR / "ca.pem"

MIB = 1 << 20
RATE = 20 * MIB  # per-connection cap on the capped ports, bytes/s
DELAY = 0.010  # bench/latency.py holds every chunk this long in each direction: +20 ms RTT
HOST = "127.0.0.1"
TOOLS = ["haul", "aria2c", "curl", "wget2", "axel"]
ALL_WORKLOADS = ("limits", "W1", "W2", "W3", "W4", "W5", "W6", "W7", "W1L", "W7L", "W8")
W8_SOURCES = 1000  # distinct files behind W8's URLs: the last three digits of the URL pick one
MARK_BEGIN = "<!-- bench:begin (written by bench/run; edit outside these markers) -->"
MARK_END = "<!-- bench:end -->"

# command -> Debian package providing it
PACKAGES = {
    "nginx": "nginx",
    "aria2c": "aria2",
    "curl": "curl",
    "wget2": "wget2",
    "axel": "axel",
    "/usr/bin/time": "time",
    "ss": "iproute2",
    "openssl": "openssl",
    "sha256sum": "coreutils",
}

# Before each timed run, wait until other processes use less than this many cores, for at
# most QUIET_WAIT_PER_RUN seconds and QUIET_WAIT_TOTAL seconds over the whole benchmark.
QUIET_CORES = 0.25
QUIET_WAIT_PER_RUN = 30
QUIET_WAIT_TOTAL = 600

# Fixed key for the fixture generator: AES-128-CTR over zeros is a fast, deterministic PRNG.
FIXTURE_KEY = "000102030405060708090a0b0c0d0e0f"
FIXTURE_SCHEME = "openssl aes-128-ctr over zeros, v1"


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class BenchError(Exception):
    """A setup step failed; the message says which and why."""


# ---------------------------------------------------------------------------------------
# configuration


@dataclasses.dataclass
class Config:
    quick: bool
    runs: int
    w1_n: int = 2000
    w1_size: int = 16 * 1024
    w1_j: int = 16
    big: int = 512 * MIB
    w2_n: int = 4
    w2_j: int = 4
    w3_ref_runs: int = 1
    w4_n: int = 50_000
    w4_size: int = 1024
    w4_j: int = 32
    w4_scale: tuple = (5_000, 200_000)
    # W8 serves w8_n distinct URLs from the first W8_SOURCES w4 files (nginx rewrite), so it
    # needs no fixtures of its own; its own scale points run only when W4's do not match.
    w8_n: int = 1_000_000
    w8_j: int = 32
    w8_scale: tuple = (50_000, 200_000)
    scale_runs: int = 1
    w5_runs_single: int = 1
    speed_seconds: int = 3
    # W8 (a million URLs) takes longer than all the others together: only with --only W8.
    workloads: tuple = ("limits", "W1", "W2", "W3", "W4", "W5", "W6", "W7", "W1L", "W7L")
    tools: tuple = tuple(TOOLS)
    haul: Path = REPO / "target" / "release" / "haul"
    ports: tuple = (18480, 18481, 18482)
    tls_port: int = 18483  # HTTPS + HTTP/2, same files
    lat_ports: tuple = (18484, 18485)  # latency relay to the plain port, to the TLS port
    timeout: int = 900
    write: bool = True


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="bench/run",
        description="Benchmark haul against aria2c, curl, wget2 and axel on loopback.",
    )
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 64 MiB files, 200 small files, 2,000-URL list, one run each")
    p.add_argument("--runs", type=int, help="runs per cell, the median is reported (default 3; quick 1)")
    p.add_argument("--big-mib", type=int, help="size of the W2/W3/W5 files in MiB (default 512; quick 64)")
    p.add_argument("--only", help="comma-separated subset of: " + ",".join(ALL_WORKLOADS)
                   + " (W8, a million URLs, runs only when named here)")
    p.add_argument("--tools", help="comma-separated subset of: " + ",".join(TOOLS))
    p.add_argument("--haul", type=Path, help="haul binary (default target/release/haul)")
    p.add_argument("--port-base", type=int, default=18480,
                   help="plain port; capped = +1, socket-paced = +2, HTTPS/HTTP2 = +3, "
                        "latency relay to plain = +4, to HTTPS = +5 (default 18480)")
    p.add_argument("--write", dest="write", action="store_true", default=None,
                   help="write the report into BENCHMARKS.md (default for a full run)")
    p.add_argument("--no-write", dest="write", action="store_false",
                   help="only print the report and save it under /tmp/haul-bench")
    p.add_argument("--render-only", action="store_true",
                   help="redraw the report from the last run's /tmp/haul-bench/results.json, run nothing")
    a = p.parse_args(argv)
    cfg = Config(quick=a.quick, runs=3)
    if a.quick:
        cfg.runs = 1
        cfg.w1_n = 200
        cfg.big = 64 * MIB
        cfg.w4_n = 2_000
        cfg.w4_scale = (500, 5_000)
        cfg.w8_n = 100_000
        cfg.w8_scale = (10_000, 50_000)
        cfg.speed_seconds = 1
        cfg.write = False
    if a.runs:
        cfg.runs = a.runs
    if a.big_mib:
        cfg.big = a.big_mib * MIB
    if a.only:
        cfg.workloads = tuple(w.strip() for w in a.only.split(","))
        unknown = set(cfg.workloads) - set(ALL_WORKLOADS)
        if unknown:
            p.error(f"--only: unknown workload(s) {sorted(unknown)}")
    if a.tools:
        cfg.tools = tuple(t.strip() for t in a.tools.split(","))
        unknown = set(cfg.tools) - set(TOOLS)
        if unknown:
            p.error(f"--tools: unknown tool(s) {sorted(unknown)}")
    if a.haul:
        cfg.haul = a.haul.resolve()
    cfg.ports = (a.port_base, a.port_base + 1, a.port_base + 2)
    cfg.tls_port = a.port_base + 3
    cfg.lat_ports = (a.port_base + 4, a.port_base + 5)
    if a.write is not None:
        cfg.write = a.write
    return cfg


# ---------------------------------------------------------------------------------------
# tools


def ensure_tools():
    missing = [cmd for cmd in PACKAGES if shutil.which(cmd) is None]
    if not missing:
        return
    pkgs = sorted({PACKAGES[c] for c in missing})
    log(f"installing {' '.join(pkgs)} (missing: {' '.join(missing)})")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # Debian's nginx package would start the system service on port 80 of every address;
    # a temporary policy-rc.d (only if none exists) stops invoke-rc.d from doing that.
    policy = Path("/usr/sbin/policy-rc.d")
    made_policy = False
    if "nginx" in pkgs and not policy.exists():
        policy.write_text("#!/bin/sh\n# written by haul bench/run.py during apt-get install\nexit 101\n")
        policy.chmod(0o755)
        made_policy = True
    try:
        cmd = ["apt-get", "install", "-y", "--no-install-recommends"] + pkgs
        if subprocess.run(cmd, env=env).returncode != 0:
            log("install failed; running apt-get update once and retrying")
            subprocess.run(["apt-get", "update"], env=env, check=False)
            if subprocess.run(cmd, env=env).returncode != 0:
                raise BenchError(f"apt-get install {' '.join(pkgs)} failed")
    finally:
        if made_policy:
            policy.unlink(missing_ok=True)
    still = [cmd for cmd in PACKAGES if shutil.which(cmd) is None]
    if still:
        raise BenchError(f"still missing after install: {' '.join(still)}")


def haul_has_split(haul):
    out = subprocess.run([str(haul), "get", "--help"], capture_output=True, text=True, timeout=30)
    return "--split" in out.stdout


def first_line(argv):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"unavailable ({err})"
    text = (r.stdout or r.stderr).strip()
    return text.splitlines()[0] if text else "?"


def versions(cfg):
    return {
        "haul": first_line([str(cfg.haul), "--version"]),
        "aria2c": first_line(["aria2c", "--version"]),
        "curl": first_line(["curl", "--version"]),
        "wget2": first_line(["wget2", "--version"]),
        "axel": first_line(["axel", "--version"]),
        "nginx": first_line(["nginx", "-v"]),
        "openssl": first_line(["openssl", "version"]),
        "sha256sum": first_line(["sha256sum", "--version"]),
        "python": sys.version.split()[0],
    }


# ---------------------------------------------------------------------------------------
# fixtures


@dataclasses.dataclass
class FileSet:
    """A directory of generated files: name -> sha256, all of one size."""

    key: str
    count: int
    size: int
    pattern: str

    @property
    def dir(self):
        return DATA / self.key

    def names(self, n=None):
        return [self.pattern % i for i in range(self.count if n is None else n)]

    def url(self, port, name, scheme="http"):
        return f"{scheme}://{HOST}:{port}/{self.key}/{name}"


def keystream(tag):
    """A deterministic byte stream for one fixture set (AES-CTR with an IV from the tag)."""
    iv = hashlib.sha256(tag.encode()).hexdigest()[:32]
    return subprocess.Popen(
        ["openssl", "enc", "-aes-128-ctr", "-nosalt", "-K", FIXTURE_KEY, "-iv", iv, "-in", "/dev/zero"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )


def read_exact(stream, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(min(n - len(buf), 8 * MIB))
        if not chunk:
            raise BenchError("openssl keystream ended early")
        buf += chunk
    return bytes(buf)


def ensure_fileset(fs):
    """Generate fs under DATA unless a stamp says it is there; return {name: sha256}."""
    stamp_path = fs.dir / ".stamp.json"
    sums_path = DATA / f"{fs.key}.sha256"
    want = {"scheme": FIXTURE_SCHEME, "size": fs.size, "pattern": fs.pattern}
    try:
        stamp = json.loads(stamp_path.read_text())
        if {k: stamp.get(k) for k in want} == want and stamp.get("count", 0) >= fs.count:
            names = fs.names()
            if all((fs.dir / n).stat().st_size == fs.size for n in names):
                sums = load_sums(sums_path)
                if all(n in sums for n in names):
                    return {n: sums[n] for n in names}
    except (OSError, ValueError):
        pass
    log(f"generating {fs.count} x {fs.size} B into {fs.dir}")
    if fs.dir.exists():
        shutil.rmtree(fs.dir)
    fs.dir.mkdir(parents=True)
    proc = keystream(fs.key)
    sums = {}
    try:
        for name in fs.names():
            with open(fs.dir / name, "wb") as f:
                h = hashlib.sha256()
                left = fs.size
                while left:
                    chunk = read_exact(proc.stdout, min(left, 8 * MIB))
                    f.write(chunk)
                    h.update(chunk)
                    left -= len(chunk)
            sums[name] = h.hexdigest()
    finally:
        proc.kill()
        proc.wait()
    sums_path.write_text("".join(f"{h}  {n}\n" for n, h in sums.items()))
    stamp_path.write_text(json.dumps(dict(want, count=fs.count)))
    return sums


def load_sums(path):
    sums = {}
    for line in path.read_text().splitlines():
        h, _, name = line.partition("  ")
        sums[name] = h
    return sums


def warm(fs, n=None):
    """Read a set once so every tool's first run finds it in the page cache."""
    for name in fs.names(n):
        with open(fs.dir / name, "rb") as f:
            while f.read(8 * MIB):
                pass


# ---------------------------------------------------------------------------------------
# environment: tmpfs, nginx, pacer


class Environment:
    """Owns every process and mount the benchmark starts; close() undoes all of them."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.nginx = None
        self.pacer = None
        self.latency = None
        self.latency_delay = DELAY
        self.mounted = False
        self.current = None  # the timed process group running right now
        self.quiet_budget = QUIET_WAIT_TOTAL
        self.quiet_waited = 0.0

    # -- tmpfs
    def mount_tmpfs(self):
        OUT.mkdir(parents=True, exist_ok=True)
        # W8 writes w8_n files of 1 KiB at once, each taking a 4 KiB page and an inode.
        files = self.cfg.w8_n + 10_000 if "W8" in self.cfg.workloads else 0
        gib = max(3, -(-files * 5 * 1024 // (1 << 30)))
        if fstype(OUT) == "tmpfs":
            st = os.statvfs(OUT)
            if st.f_bavail * st.f_frsize < files * 4096 or st.f_favail < files:
                raise BenchError(f"{OUT} is a tmpfs too small for W8 ({st.f_bavail * st.f_frsize >> 20} MiB, "
                                 f"{st.f_favail} inodes free; {files * 4096 >> 20} MiB and {files} wanted): "
                                 f"unmount it first")
            log(f"{OUT} is already a tmpfs")
            return
        opts = f"size={gib}G" + (f",nr_inodes={2 * files}" if files else "")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(OUT)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise BenchError(f"mount tmpfs on {OUT} failed: {r.stderr.strip()}")
        self.mounted = True
        log(f"mounted a {gib} GiB tmpfs on {OUT}")

    # -- nginx
    def start_nginx(self):
        self.stop_stale()
        for port in self.cfg.ports + (self.cfg.tls_port,) + self.cfg.lat_ports:
            if not port_free(port):
                raise BenchError(f"port {HOST}:{port} is in use; pick others with --port-base")
        for sub in ("tmp",):
            (NGX / sub).mkdir(parents=True, exist_ok=True)
        make_tls()
        plain, capped, _ = self.cfg.ports
        user_line = "user root root;" if os.geteuid() == 0 else "# not root: workers run as this user"
        h2_listen, h2_directive = ("", "http2 on;") if nginx_version() >= (1, 25, 1) else (" http2", "")
        conf = (BENCH / "nginx.conf.in").read_text()
        for k, v in {"@NGX@": str(NGX), "@DATA@": str(DATA), "@PLAIN_PORT@": str(plain),
                     "@CAPPED_PORT@": str(capped), "@RATE@": str(RATE), "@USER_LINE@": user_line,
                     "@TLS_PORT@": str(self.cfg.tls_port), "@TLS@": str(TLS_DIR),
                     "@HTTP2_LISTEN@": h2_listen, "@HTTP2_DIRECTIVE@": h2_directive}.items():
            conf = conf.replace(k, v)
        conf_path = NGX / "nginx.conf"
        conf_path.write_text(conf)
        ACCESS_LOG.write_bytes(b"")
        errlog = NGX / "error.log"
        self.nginx = subprocess.Popen(
            ["nginx", "-p", str(NGX), "-c", str(conf_path), "-e", str(errlog)],
            stdout=open(NGX / "stdout.log", "wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        wait_listening([plain, capped, self.cfg.tls_port], self.nginx, "nginx", errlog)

    def start_pacer(self):
        plain, _, paced = self.cfg.ports
        self.pacer = subprocess.Popen(
            [sys.executable, str(BENCH / "pacer.py"), "--listen", f"{HOST}:{paced}",
             "--upstream", f"{HOST}:{plain}", "--rate", str(RATE)],
            stdout=open(NGX / "pacer.log", "wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        (NGX / "pacer.pid").write_text(str(self.pacer.pid))
        wait_listening([paced], self.pacer, "pacer", NGX / "pacer.log")

    def start_latency(self, delay=DELAY):
        """bench/latency.py: +2 × delay of round trip in front of the plain and the TLS port."""
        if self.latency is not None:  # a restart with another delay (Bench.check_latency)
            stop_process(self.latency, signal.SIGTERM)
        self.latency_delay = delay
        plain, tls = self.cfg.ports[0], self.cfg.tls_port
        pairs = []
        for listen, upstream in zip(self.cfg.lat_ports, (plain, tls)):
            pairs += ["--pair", f"{HOST}:{listen}={HOST}:{upstream}"]
        (NGX / "latency.stats").write_bytes(b"")
        self.latency = subprocess.Popen(
            [sys.executable, str(BENCH / "latency.py"), *pairs, "--delay", f"{delay:.6f}",
             "--stats", str(NGX / "latency.stats")],
            stdout=open(NGX / "latency.log", "wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        (NGX / "latency.pid").write_text(str(self.latency.pid))
        wait_listening(list(self.cfg.lat_ports), self.latency, "latency relay", NGX / "latency.log")

    def latency_stats(self):
        """The latency relay's figures since the last call (it appends a JSON line on SIGUSR1)."""
        if self.latency is None or self.latency.poll() is not None:
            return None
        path = NGX / "latency.stats"
        before = path.stat().st_size
        self.latency.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with open(path, "rb") as f:
                f.seek(before)
                tail = f.read()
            if tail.endswith(b"\n"):
                return json.loads(tail.decode().strip().splitlines()[-1])
            time.sleep(0.01)
        return None

    def stop_stale(self):
        """Stop an nginx or relay orphaned by an earlier run of this script that was killed
        before it could clean up. Only orphans: claim_workspace has already refused to start
        if a live run owns them."""
        for pid in leftover_servers():
            if parent_alive(pid):
                raise BenchError(f"process {pid} still serves /tmp/haul-bench for a live parent; not touching it")
            log(f"stopping an orphaned server {pid} left behind by an earlier, killed run")
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.05)

    def check_servers(self):
        """Refuse to time anything against a dead server: every request would fail or retry."""
        for name, proc in (("nginx", self.nginx), ("pacer", self.pacer), ("latency relay", self.latency)):
            if proc is not None and proc.poll() is not None:
                raise BenchError(f"{name} (pid {proc.pid}) exited during the benchmark with code "
                                 f"{proc.returncode}; was it stopped from outside?")

    def server_cpu(self):
        """CPU seconds used so far by nginx (master and workers) and the relays."""
        pids = []
        if self.nginx is not None:
            pids = [self.nginx.pid] + children(self.nginx.pid)
        for relay in (self.pacer, self.latency):
            if relay is not None:
                pids.append(relay.pid)
        return sum(proc_cpu(p) for p in pids)

    def wait_quiet(self):
        """Wait, bounded, until the rest of the machine is idle: the 2 cores are shared with
        other work (builds of other sessions), which would be timed as the tool's wall.
        Returns the cores others were using when the wait ended."""
        deadline = time.monotonic() + min(QUIET_WAIT_PER_RUN, max(0.0, self.quiet_budget))
        start = time.monotonic()
        while True:
            b0 = cpu_busy()
            time.sleep(0.3)
            used = (cpu_busy() - b0) / 0.3
            if used < QUIET_CORES or time.monotonic() >= deadline:
                break
        waited = time.monotonic() - start - 0.3
        self.quiet_budget -= waited
        self.quiet_waited += waited
        return used

    def kill_current(self):
        p = self.current
        if p is not None and p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
        self.current = None

    def close(self):
        self.kill_current()
        if self.pacer is not None:
            stop_process(self.pacer, signal.SIGTERM)
            (NGX / "pacer.pid").unlink(missing_ok=True)
        if self.latency is not None:
            stop_process(self.latency, signal.SIGTERM)
            (NGX / "latency.pid").unlink(missing_ok=True)
        if self.nginx is not None:
            stop_process(self.nginx, signal.SIGQUIT)  # graceful: workers finish, then exit
        if self.mounted:
            r = subprocess.run(["umount", str(OUT)], capture_output=True, text=True)
            if r.returncode != 0:
                log(f"warning: umount {OUT} failed: {r.stderr.strip()}")
            else:
                log(f"unmounted {OUT}")


def cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def parent_pid(pid):
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def parent_alive(pid):
    """True when pid's parent is a live bench driver (run.py), not init or a subreaper."""
    return "run.py" in cmdline(parent_pid(pid))


def leftover_servers():
    """Live nginx masters and relays that serve this benchmark's directory, by pidfile."""
    found = []
    for pidfile, marker in ((NGX / "nginx.pid", str(NGX / "nginx.conf")), (NGX / "pacer.pid", "pacer.py"),
                            (NGX / "latency.pid", "latency.py")):
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            continue
        if marker in cmdline(pid):
            found.append(pid)
    return found


def claim_workspace():
    """Take /tmp/haul-bench for this run, or refuse: two runs at once would share the ports,
    the pidfiles and the tmpfs, and each would time the other's load. Returns the open lock
    file, which must stay open for the whole run."""
    ROOT.mkdir(parents=True, exist_ok=True)
    lock = open(ROOT / "run.lock", "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        raise BenchError(f"another bench/run (pid {lock.read().strip() or '?'}) is using {ROOT}; "
                         "wait for it to finish")
    # A run of an older copy of this script takes no lock: recognise it by its live servers.
    for pid in leftover_servers():
        if parent_alive(pid):
            raise BenchError(f"another bench run (pid {parent_pid(pid)}) is using {ROOT}; wait for it to finish")
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def die_with_parent():
    """preexec_fn: the kernel sends SIGTERM to the server if this script dies, even by SIGKILL."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def nginx_version():
    text = first_line(["nginx", "-v"])
    m = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(x) for x in m.groups()) if m else (0, 0, 0)


def make_tls():
    """A private CA and a certificate for 127.0.0.1 signed by it, under TLS_DIR (P-256 keys,
    valid two days; made afresh every run, so nothing outlives the benchmark)."""
    TLS_DIR.mkdir(parents=True, exist_ok=True)
    ext = TLS_DIR / "server.ext"
    ext.write_text("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                   "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n")
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    steps = [
        ["openssl", "req", "-x509", *key, "-keyout", TLS_DIR / "ca.key", "-out", CA_CERT, "-days", "2",
         "-subj", "/CN=haul bench private CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ["openssl", "req", *key, "-keyout", TLS_DIR / "server.key", "-out", TLS_DIR / "server.csr",
         "-subj", "/CN=127.0.0.1"],
        ["openssl", "x509", "-req", "-in", TLS_DIR / "server.csr", "-CA", CA_CERT, "-CAkey", TLS_DIR / "ca.key",
         "-CAcreateserial", "-days", "2", "-sha256", "-extfile", ext, "-out", TLS_DIR / "server.pem"],
    ]
    for argv in steps:
        r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise BenchError(f"{' '.join(str(a) for a in argv[:3])} failed: {r.stderr.strip()}")


def http_rtt(port, path, n=9):
    """Median time from sending a HEAD request to the end of its response head, on one
    kept-alive connection (the first exchange is left out)."""
    req = f"HEAD {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    times = []
    with socket.create_connection((HOST, port), timeout=5) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(n + 1):
            t = time.perf_counter()
            s.sendall(req)
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    raise BenchError(f"port {port} closed the connection during the RTT check")
                buf += chunk
            times.append(time.perf_counter() - t)
    return statistics.median(times[1:])


def stop_process(proc, sig):
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def fstype(path):
    path = str(path)
    best = ("", "")
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            mnt, typ = parts[1], parts[2]
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(best[0]):
                best = (mnt, typ)
    return best[1] if best[0] == path else "(not a mount point)"


def port_free(port):
    s = socket.socket()
    # As nginx does: connections of an earlier run still in TIME_WAIT must not count as "in use".
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((HOST, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def wait_listening(ports, proc, name, logfile):
    deadline = time.monotonic() + 10
    for port in ports:
        while True:
            if proc.poll() is not None:
                raise BenchError(f"{name} exited at start (code {proc.returncode}); see {logfile}")
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchError(f"{name} is not listening on {HOST}:{port} after 10 s; see {logfile}")
                time.sleep(0.05)


# ---------------------------------------------------------------------------------------
# measuring one run


def server_conns(ports):
    """Established server-side sockets on ports: {(local, peer): bytes_acked}."""
    flt = " or ".join(f"sport = :{p}" for p in ports)
    r = subprocess.run(["ss", "-tinHO", "state", "established", f"( {flt} )"],
                       capture_output=True, text=True, timeout=10)
    conns = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) < 4:
            continue
        m = re.search(r"bytes_acked:(\d+)", line)
        conns[(parts[2], parts[3])] = int(m.group(1)) if m else 0
    return conns


HZ = os.sysconf("SC_CLK_TCK")


def cpu_busy():
    """Seconds of CPU the whole machine has spent in processes since boot (all cores).

    user + nice + system only: interrupt and softirq time (loopback TCP is mostly softirq)
    is charged to no process, so counting it would make every network-heavy run look as if
    something else had been running."""
    with open("/proc/stat") as f:
        vals = [int(v) for v in f.readline().split()[1:4]]
    return sum(vals) / HZ


def proc_cpu(pid):
    """user+sys seconds of a live process (all its threads), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / HZ
    except (OSError, IndexError, ValueError):
        return 0.0


def children(pid):
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def settle(ports):
    """Wait (bounded) until nginx has closed and logged every connection of the last run."""
    deadline = time.monotonic() + 10
    while server_conns(ports) and time.monotonic() < deadline:
        time.sleep(0.05)
    last = -1
    for _ in range(40):  # the log stops growing within a few ms once connections are gone
        size = ACCESS_LOG.stat().st_size
        if size == last:
            break
        last = size
        time.sleep(0.05)


def parse_access(text, capped_ports):
    """Totals of one run's access-log lines, and the fastest connection on a capped port."""
    body = total = reqs = 0
    statuses = {}
    protos = {}
    conns = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) < 8:
            continue
        port, conn, status = f[0], f[1], f[3]
        b, t, msec, rt = int(f[4]), int(f[5]), float(f[6]), float(f[7])
        body += b
        total += t
        reqs += 1
        statuses[status] = statuses.get(status, 0) + 1
        m = re.search(r' (HTTP/[\d.]+)"', line)
        if m:
            protos[m.group(1)] = protos.get(m.group(1), 0) + 1
        c = conns.setdefault((port, conn), [0, msec - rt, msec])
        c[0] += b
        c[1] = min(c[1], msec - rt)
        c[2] = max(c[2], msec)
    fastest = 0.0
    for (port, _), (b, start, end) in conns.items():
        if int(port) in capped_ports and b >= 4 * MIB and end - start > 0.05:
            fastest = max(fastest, b / (end - start))
    return {"body": body, "total": total, "requests": reqs, "connections": len(conns),
            "statuses": statuses, "protocols": protos, "fastest_conn": fastest}


def hash_file(path):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def check_outputs(expected):
    """Number of expected outputs missing or with the wrong sha256, and the first of them."""
    bad = []
    for path, want in expected.items():
        try:
            ok = hash_file(path) == want
        except OSError:
            ok = False
        if not ok:
            bad.append(str(path))
    return len(bad), (bad[0] if bad else "")


def finished_names(outdir, expected):
    """Names of the regular files directly in outdir that are already complete: partial
    downloads (*.part) left out, and, where the workload knows what a file must hold, any
    whose sha256 is not that yet (curl, wget2, aria2c and axel write under the final name as
    they go, so a name alone does not mean a finished file)."""
    try:
        names = {e.name for e in os.scandir(outdir) if e.is_file(follow_symlinks=False)
                 and not e.name.endswith(".part") and not e.name.startswith(".")}
    except FileNotFoundError:
        return set()
    want = {Path(p).name: h for p, h in expected.items() if Path(p).parent == Path(outdir)}
    if not want:
        return names
    return {n for n in names if n in want and hash_file(Path(outdir) / n) == want[n]}


def refetched(access_slice, names):
    """How many requests in an access-log slice asked for a URL whose last segment is in names."""
    if not names:
        return 0
    n = 0
    with open(access_slice, errors="replace") as f:
        for line in f:
            m = re.search(r'"[A-Z]+ (\S+) HTTP/', line)
            if m and m.group(1).rsplit("/", 1)[-1] in names:
                n += 1
    return n


def clear_dir(path):
    path.mkdir(parents=True, exist_ok=True)
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


@dataclasses.dataclass
class Spec:
    """One cell of the table: a tool's command for one workload, and how to judge it."""

    wid: str
    tool: str
    argv: list
    expected: dict  # output path -> sha256
    payload: int
    runs: int
    outdir: Path = None  # cleared before each run when set
    resume: bool = False  # W5: kill at 50 % delivered, then rerun and time the rerun
    verify_only: bool = False  # W6: nothing may be (re)downloaded
    relay: bool = False  # W1L, W7L: through bench/latency.py, whose figures each run records
    kill_after_requests: int = 0  # with resume: kill once nginx logged this many requests (W8)
    after: object = None  # called as after(runner, spec, result) before the outputs are cleared
    note: str = ""
    results: list = dataclasses.field(default_factory=list)

    @property
    def name(self):
        return f"{self.wid}-{self.tool}"


class Runner:
    def __init__(self, env, cfg):
        self.env = env
        self.cfg = cfg
        self.all_ports = cfg.ports + (cfg.tls_port,)
        self.capped = (cfg.ports[1], cfg.ports[2])

    def timed(self, argv, tag, kill_when=None, kill_after_requests=0):
        """Run argv under GNU time; kill_when=(port, bytes) SIGKILLs it once that many bytes
        were delivered on port, kill_after_requests once nginx has logged that many finished
        requests. Returns the measurements and the access-log slice."""
        LOGS.mkdir(parents=True, exist_ok=True)
        tfile = LOGS / f"{tag}.time"
        tfile.unlink(missing_ok=True)
        self.env.check_servers()
        busy_before = self.env.wait_quiet()
        offset = ACCESS_LOG.stat().st_size
        srv0, mach0 = self.env.server_cpu(), cpu_busy()
        with open(LOGS / f"{tag}.out", "wb") as out:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                ["/usr/bin/time", "-f", "%e %U %S %M", "-o", str(tfile), "--"] + [str(a) for a in argv],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
            self.env.current = proc
            deadline = t0 + self.cfg.timeout
            killed = timed_out = False
            seen = {}
            if kill_when:
                port, threshold = kill_when
                while proc.poll() is None and time.perf_counter() < deadline:
                    for k, v in server_conns([port]).items():
                        seen[k] = max(seen.get(k, 0), v)
                    if sum(seen.values()) >= threshold:
                        os.killpg(proc.pid, signal.SIGKILL)
                        killed = True
                        break
                    time.sleep(0.02)
            elif kill_after_requests:
                # nginx writes a line when a response has been sent in full: count new lines.
                logged, pos = 0, offset
                with open(ACCESS_LOG, "rb") as f:
                    while proc.poll() is None and time.perf_counter() < deadline:
                        f.seek(pos)
                        chunk = f.read()
                        chunk = chunk[: chunk.rfind(b"\n") + 1]
                        pos += len(chunk)
                        logged += chunk.count(b"\n")
                        if logged >= kill_after_requests:
                            os.killpg(proc.pid, signal.SIGKILL)
                            killed = True
                            break
                        time.sleep(0.02)
                seen["requests"] = logged
            # A blocking wait, with a timer for the deadline: Popen.wait(timeout=...) polls
            # with sleeps of up to 50 ms, which put every wall time on a 50 ms step.
            expired = threading.Event()

            def expire():
                expired.set()
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass  # it ended just as the deadline came

            timer = threading.Timer(max(0.0, deadline - time.perf_counter()), expire)
            timer.start()
            proc.wait()
            wall = time.perf_counter() - t0
            timer.cancel()
            timed_out = expired.is_set()
            self.env.current = None
            mach1, srv1 = cpu_busy(), self.env.server_cpu()
        settle(self.all_ports)
        with open(ACCESS_LOG, "rb") as f:
            f.seek(offset)
            slice_ = f.read().decode(errors="replace")
        (LOGS / f"{tag}.access.log").write_text(slice_)
        user = sys_ = 0.0
        rss = 0
        try:
            lines = [l for l in tfile.read_text().splitlines() if l.strip()]
            e, u, s, m = lines[-1].split()
            user, sys_, rss = float(u), float(s), int(m)
        except (OSError, ValueError, IndexError):
            pass  # killed runs have no GNU time line
        code = proc.returncode
        server = srv1 - srv0
        # Whatever the machine was busy with beyond the tool and the servers: other work.
        other = (mach1 - mach0) - (user + sys_) - server
        return {
            "server_cpu": server, "other_cpu": other, "others_cores_before": busy_before,
            "wall": wall, "user": user, "sys": sys_, "cpu": user + sys_, "rss_kib": rss,
            "exit": code, "killed": killed, "timed_out": timed_out,
            "delivered_at_kill": 0 if kill_after_requests else sum(seen.values()),
            "requests_at_kill": seen.get("requests", 0), **parse_access(slice_, self.capped),
        }

    def run(self, spec, i):
        tag = f"{spec.name}-{i + 1}"
        if spec.outdir is not None:
            clear_dir(spec.outdir)
        res = {"run": i + 1}
        if spec.resume:
            if spec.kill_after_requests:
                first = self.timed(spec.argv, tag + "-killed", kill_after_requests=spec.kill_after_requests)
            else:
                first = self.timed(spec.argv, tag + "-killed", kill_when=(self.cfg.ports[1], spec.payload // 2))
            res["first"] = {k: first[k] for k in ("wall", "killed", "body", "requests", "delivered_at_kill",
                                                  "requests_at_kill")}
            # Files already at their final name when the kill came: the rerun must not fetch them.
            done = finished_names(spec.outdir, spec.expected) if spec.outdir is not None else set()
            second = self.timed(spec.argv, tag)
            res.update(second)
            res["finished_at_kill"] = len(done)
            res["refetched"] = refetched(LOGS / f"{tag}.access.log", done)
            log(f"{spec.name} run {i + 1}: killed after {first['wall']:.1f} s, {len(done):,} files done; the "
                f"rerun asked for {res['refetched']:,} of them again")
            res["served"] = first["body"] + second["body"]
            res["wall_total"] = first["wall"] + second["wall"]
            if not first["killed"]:
                res["note"] = "finished before the kill"
        else:
            if spec.relay:
                self.env.latency_stats()  # start the relay's counters afresh
            res.update(self.timed(spec.argv, tag))
            res["served"] = res["body"]
            if spec.relay:
                res["relay"] = self.env.latency_stats()
        problems = []
        if res["timed_out"]:
            problems.append(f"timed out after {self.cfg.timeout} s")
        if res["exit"] not in (0,):
            problems.append(f"exit code {res['exit']}")
        nbad, first_bad = check_outputs(spec.expected)
        if nbad:
            problems.append(f"{nbad} output(s) missing or wrong, e.g. {first_bad}")
        if spec.verify_only and res["served"] >= spec.payload:
            problems.append("downloaded the files again instead of verifying")
        if res.get("refetched"):
            problems.append(f"the rerun fetched {res['refetched']} file(s) finished before the kill")
        if spec.after is not None:
            spec.after(self, spec, res)
        res["ok"] = not problems
        res["problems"] = problems
        spec.results.append(res)
        status = "ok" if res["ok"] else "FAILED: " + "; ".join(problems)
        mbs = spec.payload / res["wall"] / 1e6 if res["wall"] > 0 else 0
        log(f"{spec.name} run {i + 1}/{spec.runs}: wall {res['wall']:.3f} s ({mbs:.0f} MB/s), "
            f"cpu {res['cpu']:.2f} s, rss {res['rss_kib'] / 1024:.1f} MiB, "
            f"served/payload {res['served'] / spec.payload:.3f}, {res['requests']} req on "
            f"{res['connections']} conn, server cpu {res['server_cpu']:.2f} s, others {res['other_cpu']:.2f} s: "
            f"{status}")
        if spec.outdir is not None and spec.wid != "W6":
            clear_dir(spec.outdir)

    def run_all(self, specs):
        """Interleave runs (run 1 of every cell, then run 2, ...) so slow drifts in machine
        load spread over all tools instead of landing on one."""
        for i in range(max((s.runs for s in specs), default=0)):
            for spec in specs:
                if i < spec.runs:
                    self.run(spec, i)


# ---------------------------------------------------------------------------------------
# workloads


def write_list(name, urls, fmt, outdir):
    """Write the URL list for one tool; returns its path."""
    LISTS.mkdir(parents=True, exist_ok=True)
    path = LISTS / f"{name}.{fmt}"
    with open(path, "w") as f:
        if fmt == "curl":
            for url in urls:
                f.write(f'url = "{url}"\noutput = "{outdir / url.rsplit("/", 1)[1]}"\n')
        else:
            for url in urls:
                f.write(url + "\n")
    return path


def list_argv(cfg, tool, lst, outdir, j, tls=False, haul_defaults=False):
    """A tool's idiomatic command for a list of URLs, j at once, into outdir."""
    argv = {
        "haul": [cfg.haul, "get", "-i", lst, "-d", outdir, "-j", j]
                + ([] if haul_defaults else ["--max-per-host", j])
                + (["--ca-cert", CA_CERT] if tls else []) + ["-q"],
        "aria2c": ["aria2c", "-i", lst, "-j", j, "--allow-overwrite=true", "--auto-file-renaming=false",
                   "--file-allocation=none", "-d", outdir]
                  + ([f"--ca-certificate={CA_CERT}"] if tls else []) + ["-q"],
        "curl": ["curl", "--parallel", "--parallel-max", j, "-sS"]
                + (["--cacert", CA_CERT] if tls else []) + ["-K", lst],
        "wget2": ["wget2", f"--max-threads={j}", "-i", lst, "-P", outdir]
                 + (["--http2", f"--ca-certificate={CA_CERT}"] if tls else []) + ["-q"],
    }[tool.split("-")[0]]
    if tool == "aria2c-deferred":
        argv.insert(-1, "--deferred-input=true")
    return argv


class W8Expected:
    """W8's outputs and their sha256s, made on the fly: a dict of a million Paths would
    cost the driver more memory than the tools it measures."""

    def __init__(self, outdir, n, sums):
        self.outdir, self.n, self.sums = outdir, n, sums

    def items(self):
        for i in range(self.n):
            name = w8_name(i)
            yield self.outdir / name, self.sums[w8_source(i)]

    def __len__(self):
        return self.n


def w8_name(i):
    return f"f{i:07d}.bin"


def w8_source(i):
    """The w4 fixture nginx serves for W8's i-th URL (see the /w8/ location in nginx.conf.in)."""
    return f"f{i % W8_SOURCES:06d}.bin"


def w8_specs(cfg, wid, n, port, sums, tools):
    """Specs for the first n of W8's URLs, cfg.w8_j at once, one run each."""
    specs = []
    for tool in tools:
        outdir = OUT / f"{wid}-{tool}"
        urls = (f"http://{HOST}:{port}/w8/{w8_name(i)}" for i in range(n))
        lst = write_list(f"{wid}-{tool}", urls, "curl" if tool == "curl" else "txt", outdir)
        # Without --deferred-input aria2c holds every URL's state (12 KB each in W4): ~12 GB here.
        argv = list_argv(cfg, "aria2c-deferred" if tool == "aria2c" else tool, lst, outdir, cfg.w8_j)
        note = "with --deferred-input=true" if tool == "aria2c" else ""
        specs.append(Spec(wid, tool, argv, W8Expected(outdir, n, sums), n * cfg.w4_size, 1, outdir=outdir,
                          note=note))
    return specs


def list_specs(cfg, wid, fs, n, j, port, runs, sums, tools=("haul", "aria2c", "curl", "wget2"),
               tls=False, haul_defaults=False, relay=False):
    """Specs for a list workload: n files of fs, j at once, each tool's idiomatic flags.
    tls: https URLs, each tool told to trust the bench's CA (and wget2 to use HTTP/2);
    haul_defaults: haul gets only -j (its default --max-per-host), as the W1L/W7L targets say;
    relay: the port is the latency relay's."""
    names = fs.names(n)
    urls = [fs.url(port, name, "https" if tls else "http") for name in names]
    specs = []
    for tool in tools:
        if tool.split("-")[0] not in cfg.tools:
            continue
        outdir = OUT / f"{wid}-{tool}"
        expected = {outdir / name: sums[name] for name in names}
        lst = write_list(f"{wid}-{tool}", urls, "curl" if tool == "curl" else "txt", outdir)
        argv = list_argv(cfg, tool, lst, outdir, j, tls, haul_defaults)
        note = ""
        if tool == "haul" and haul_defaults:
            note = f"haul's defaults but -j {j} (its own --max-per-host default)"
        elif tool == "aria2c" and tls:
            note = "aria2 speaks HTTP/1.1 only"
        specs.append(Spec(wid, tool, argv, expected, n * fs.size, runs, outdir=outdir, note=note, relay=relay))
    return specs


def single_specs(cfg, wid, fs, name, port, sums, has_split, resume):
    """Specs for one large file from a capped port (W3, W5)."""
    url = fs.url(port, name)
    specs = []
    for tool in cfg.tools:
        outdir = OUT / f"{wid}-{tool}"
        out = outdir / name
        note = ""
        runs = cfg.runs
        if tool == "haul":
            if has_split:
                argv = [cfg.haul, "get", url, "-d", outdir, "--split", 8, "--max-per-host", 8, "-q"]
            else:
                argv = [cfg.haul, "get", url, "-d", outdir, "-q"]
                note = "no --split (one connection)"
        elif tool == "aria2c":
            argv = ["aria2c", "-x8", "-s8", "-k1M", "--allow-overwrite=true", "--auto-file-renaming=false",
                    "--file-allocation=none", "-d", outdir, "-q", url]
        elif tool == "axel":
            argv = ["axel", "-n", 8, "-q", "-o", out, url]
        elif tool == "curl":
            argv = ["curl", "-sS", "-C", "-", "-o", out, url] if resume else ["curl", "-sS", "-o", out, url]
            runs = cfg.w5_runs_single if resume else cfg.w3_ref_runs
            note = "one connection (reference)"
        elif tool == "wget2":
            argv = ["wget2", "-q", "-c", "-P", outdir, url] if resume else ["wget2", "-q", "-P", outdir, url]
            runs = cfg.w5_runs_single if resume else cfg.w3_ref_runs
            note = "one connection (reference)"
        if tool == "haul" and not has_split:
            runs = cfg.w5_runs_single if resume else cfg.w3_ref_runs
        runs = min(runs, cfg.runs)
        specs.append(Spec(wid, tool, argv, {out: sums[name]}, fs.size, runs, outdir=outdir,
                          resume=resume, note=note))
    return specs


# ---------------------------------------------------------------------------------------
# report helpers


def med(spec, key):
    vals = [r[key] for r in spec.results if key in r]
    return statistics.median(vals) if vals else None


def failed(spec):
    bad = [r for r in spec.results if not r["ok"]]
    return f"FAILED ({bad[0]['problems'][0]})" if bad else ""


def fmt(v, digits=2):
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def openssl_sha256(seconds):
    r = subprocess.run(["openssl", "speed", "-seconds", str(seconds), "-evp", "sha256"],
                       capture_output=True, text=True, timeout=120)
    header = None
    for line in r.stdout.splitlines():
        if line.startswith("type"):
            header = re.findall(r"(\d+) bytes", line)
        elif header and line.lower().startswith("sha256"):
            vals = re.findall(r"([\d.]+)k", line)
            if "16384" in header and len(vals) == len(header):
                return float(vals[header.index("16384")]) * 1000 / 1e6  # MB/s
    return None


def machine_facts():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        flags = open("/proc/cpuinfo").read()
        sha_ni = " sha_ni" in flags
    except OSError:
        sha_ni = False
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "sha_ni": sha_ni, "kernel": platform.release(),
            "memory": mem, "os": first_os()}


def first_os():
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "?"


def loadavg():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def git_rev():
    r = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    d = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src", "Cargo.toml"],
                       capture_output=True, text=True)
    return r.stdout.strip() + (" (with uncommitted changes in src/)" if d.stdout.strip() else "")


# ---------------------------------------------------------------------------------------
# the benchmark


class Bench:
    def __init__(self, cfg, env):
        self.cfg = cfg
        self.env = env
        self.runner = Runner(env, cfg)
        self.cells = {}  # (wid, tool) -> Spec
        self.refs = {}  # name -> value
        self.commands = []  # (wid, tool, command line)
        self.loads = []
        self.has_split = haul_has_split(cfg.haul)
        plain, capped, paced = cfg.ports
        self.plain, self.capped, self.paced = plain, capped, paced
        self.w1 = FileSet("w1", cfg.w1_n, cfg.w1_size, "f%06d.bin")
        self.w4 = FileSet("w4", max((cfg.w4_n,) + tuple(cfg.w4_scale)), cfg.w4_size, "f%06d.bin")
        self.big = FileSet(f"big-{cfg.big // MIB}M", cfg.w2_n, cfg.big, "big%d.bin")

    def want(self, wid):
        return wid in self.cfg.workloads

    def record(self, specs):
        for s in specs:
            self.cells[(s.wid, s.tool)] = s
            self.commands.append((s.wid, s.tool, " ".join(shlex.quote(str(a)) for a in s.argv), s.note))

    def fixtures(self):
        sums = {}
        if any(self.want(w) for w in ("W1", "W7", "W1L", "W7L")):
            sums["w1"] = ensure_fileset(self.w1)
        if self.want("W4") or self.want("W8"):
            sums["w4"] = ensure_fileset(self.w4)
        if any(self.want(w) for w in ("limits", "W2", "W3", "W5", "W6")):
            sums["big"] = ensure_fileset(self.big)
        self.sums = sums

    def check_caps(self):
        """One curl on each capped port should see ~21 MB/s (20 MiB/s)."""
        n = min(self.cfg.big, 32 * MIB)
        for label, port in (("nginx limit_rate", self.capped), ("SO_MAX_PACING_RATE relay", self.paced)):
            url = self.big.url(port, self.big.names()[0])
            r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-r", f"0-{n - 1}", "-w", "%{speed_download}", url],
                               capture_output=True, text=True, timeout=120)
            speed = float(r.stdout.strip() or 0) / 1e6
            self.refs[f"cap check {label}"] = speed
            log(f"capped port check ({label}, {n // MIB} MiB, one curl): {speed:.1f} MB/s "
                f"(cap {RATE / 1e6:.1f} MB/s)")
            if not 0.85 * RATE / 1e6 <= speed <= 1.3 * RATE / 1e6:
                log(f"warning: capped port {port} gives {speed:.1f} MB/s, far from the cap")

    def limits(self):
        warm(self.big)
        names = self.big.names()
        one = Spec("limits", "curl 1 stream", ["curl", "-sS", "-o", "/dev/null", self.big.url(self.plain, names[0])],
                   {}, self.big.size, self.cfg.runs)
        script = " & ".join(f"curl -sS -o /dev/null {self.big.url(self.plain, n)}" for n in names) + " & wait"
        four = Spec("limits", f"curl {len(names)} streams", ["sh", "-c", script], {},
                    self.big.size * len(names), self.cfg.runs)
        self.record([one, four])
        self.runner.run_all([one, four])
        log("openssl speed -evp sha256 ...")
        self.refs["openssl sha256 16 KiB"] = openssl_sha256(self.cfg.speed_seconds)
        log(f"openssl sha256 (16 KiB blocks, one core): {self.refs['openssl sha256 16 KiB']:.0f} MB/s")

    def w1_(self):
        warm(self.w1)
        specs = list_specs(self.cfg, "W1", self.w1, self.cfg.w1_n, self.cfg.w1_j, self.plain, self.cfg.runs,
                           self.sums["w1"])
        self.record(specs)
        self.runner.run_all(specs)

    def w7_(self):
        warm(self.w1)
        specs = list_specs(self.cfg, "W7", self.w1, self.cfg.w1_n, self.cfg.w1_j, self.cfg.tls_port, self.cfg.runs,
                           self.sums["w1"], tls=True)
        self.record(specs)
        self.runner.run_all(specs)

    def check_latency(self):
        """The relay must add the RTT it is meant to: time HEAD requests direct and through it.
        Its timers wake late by a fraction of a millisecond (more on a busy machine), so when
        it adds more than 0.5 ms too much, restart it once with the excess taken off its delay."""
        path = f"/{self.w1.key}/{self.w1.names(1)[0]}"
        want = 2 * DELAY * 1000
        for attempt in range(2):
            direct = http_rtt(self.plain, path)
            relayed = http_rtt(self.cfg.lat_ports[0], path)
            added = (relayed - direct) * 1000
            delay = self.env.latency_delay
            log(f"latency relay (holding chunks {delay * 1000:.2f} ms each way): HEAD round trip "
                f"{relayed * 1000:.2f} ms through it, {direct * 1000:.2f} ms direct: adds {added:.2f} ms "
                f"(meant: {want:.0f} ms)")
            if attempt or abs(added - want) <= 0.5:
                break
            self.env.start_latency(max(0.001, delay - (added - want) / 2000))
        self.refs["latency rtt direct ms"] = direct * 1000
        self.refs["latency rtt relay ms"] = relayed * 1000
        self.refs["latency delay ms"] = self.env.latency_delay * 1000
        if abs(added - want) > 1:
            log(f"warning: the latency relay adds {added:.2f} ms, not {want:.0f} ms")

    def w1l_(self):
        warm(self.w1)
        specs = list_specs(self.cfg, "W1L", self.w1, self.cfg.w1_n, self.cfg.w1_j, self.cfg.lat_ports[0],
                           self.cfg.runs, self.sums["w1"], haul_defaults=True, relay=True)
        self.record(specs)
        self.runner.run_all(specs)

    def w7l_(self):
        warm(self.w1)
        specs = list_specs(self.cfg, "W7L", self.w1, self.cfg.w1_n, self.cfg.w1_j, self.cfg.lat_ports[1],
                           self.cfg.runs, self.sums["w1"], tls=True, haul_defaults=True, relay=True)
        self.record(specs)
        self.runner.run_all(specs)

    def w2_(self):
        warm(self.big)
        specs = list_specs(self.cfg, "W2", self.big, self.cfg.w2_n, self.cfg.w2_j, self.plain, self.cfg.runs,
                           self.sums["big"])
        self.record(specs)
        self.runner.run_all(specs)

    def w3_(self):
        warm(self.big)
        name = self.big.names()[0]
        specs = []
        for wid, port in (("W3", self.capped), ("W3p", self.paced)):
            specs += single_specs(self.cfg, wid, self.big, name, port, self.sums["big"], self.has_split, False)
        self.record(specs)
        self.runner.run_all(specs)

    def w4_(self):
        warm(self.w4)
        cfg = self.cfg
        tools = ("haul", "aria2c", "curl", "wget2")
        specs = list_specs(cfg, "W4", self.w4, cfg.w4_n, cfg.w4_j, self.plain, cfg.runs, self.sums["w4"], tools)
        if "aria2c" in cfg.tools:
            # aria2c reads the whole list up front unless told not to; show both.
            specs += list_specs(cfg, "W4", self.w4, cfg.w4_n, cfg.w4_j, self.plain, cfg.runs, self.sums["w4"],
                                ("aria2c-deferred",))
        self.record(specs)
        self.runner.run_all(specs)
        for n in cfg.w4_scale:
            scale = list_specs(cfg, f"W4@{n}", self.w4, n, cfg.w4_j, self.plain, cfg.scale_runs, self.sums["w4"], tools)
            self.record(scale)
            self.runner.run_all(scale)

    def w8_scale_from_w4(self):
        """W4's 50,000-URL cell and 200,000-URL scale point serve as W8's scale points when
        this run has them."""
        cfg = self.cfg
        return self.want("W4") and (cfg.w4_n, cfg.w4_scale[1]) == tuple(cfg.w8_scale)

    def w8_(self):
        cfg = self.cfg
        warm(self.w4, W8_SOURCES)
        sums = self.sums["w4"]
        tools = [t for t in ("haul", "aria2c", "curl", "wget2") if t in cfg.tools]
        specs = w8_specs(cfg, "W8", cfg.w8_n, self.plain, sums, tools)
        if "haul" in cfg.tools:
            specs[0].after = self.w8_status
            (kill,) = w8_specs(cfg, "W8k", cfg.w8_n, self.plain, sums, ("haul",))
            kill.resume = True
            kill.kill_after_requests = cfg.w8_n // 2
            kill.note = "SIGKILL once nginx has logged half the requests, then the same command again"
            specs.insert(1, kill)  # haul's cells first: a run stopped early still has them
        self.record(specs)
        self.runner.run_all(specs)
        if not self.w8_scale_from_w4():
            for n in cfg.w8_scale:
                scale = w8_specs(cfg, f"W8@{n}", n, self.plain, sums, [t for t in tools if t != "aria2c"])
                self.record(scale)
                self.runner.run_all(scale)

    def w8_status(self, runner, spec, res):
        """`haul status` on the finished W8 directory (its manifest holds every URL)."""
        r = runner.timed([self.cfg.haul, "status", "-d", spec.outdir], f"{spec.name}-status")
        res["status"] = {k: r[k] for k in ("wall", "cpu", "rss_kib", "exit")}
        log(f"{spec.name}: haul status wall {r['wall']:.3f} s, rss {r['rss_kib'] / 1024:.1f} MiB, exit {r['exit']}")
        self.commands.append(("W8", "haul status", f"{shlex.quote(str(self.cfg.haul))} status -d "
                              f"{shlex.quote(str(spec.outdir))}", "on the finished W8 directory"))

    def w5_(self):
        warm(self.big)
        name = self.big.names()[0]
        specs = single_specs(self.cfg, "W5", self.big, name, self.capped, self.sums["big"], self.has_split, True)
        self.record(specs)
        self.runner.run_all(specs)

    def w6_(self):
        cfg = self.cfg
        warm(self.big)
        names = self.big.names()
        outdir = OUT / "W6"
        clear_dir(outdir)
        urls = [self.big.url(self.plain, n) for n in names]
        lst = write_list("W6-setup", urls, "txt", outdir)
        log("W6 setup: haul get of the W2 files (untimed) so haul verify has its manifest")
        r = subprocess.run([str(cfg.haul), "get", "-i", str(lst), "-d", str(outdir), "-j", "4",
                            "--max-per-host", "4", "-q"], timeout=cfg.timeout)
        expected = {outdir / n: self.sums["big"][n] for n in names}
        nbad, first_bad = check_outputs(expected)
        if r.returncode != 0 or nbad:
            raise BenchError(f"W6 setup download failed (exit {r.returncode}, {nbad} bad, e.g. {first_bad})")
        payload = self.big.size * len(names)
        sums_all = LISTS / "W6-all.sha256"
        sums_all.write_text("".join(f"{h}  {p}\n" for p, h in expected.items()))
        halves = [list(expected.items())[: len(names) // 2], list(expected.items())[len(names) // 2:]]
        half_files = []
        for k, half in enumerate(halves):
            path = LISTS / f"W6-half{k}.sha256"
            path.write_text("".join(f"{h}  {p}\n" for p, h in half))
            half_files.append(path)
        aria_list = LISTS / "W6-aria2c.txt"
        aria_list.write_text("".join(f"{u}\n  out={n}\n  checksum=sha-256={self.sums['big'][n]}\n"
                                     for u, n in zip(urls, names)))
        specs = []
        if "haul" in cfg.tools:
            specs.append(Spec("W6", "haul", [cfg.haul, "verify", "-d", outdir, "-q"], expected, payload, cfg.runs,
                              verify_only=True))
        if "aria2c" in cfg.tools:
            specs.append(Spec("W6", "aria2c", ["aria2c", "-i", aria_list, "-j", 4, "--check-integrity=true",
                                               "--auto-file-renaming=false", "--file-allocation=none",
                                               "-d", outdir, "-q"], expected, payload, cfg.runs, verify_only=True,
                              note="without --allow-overwrite, which would make it download again"))
        specs.append(Spec("W6", "sha256sum", ["sha256sum", "-c", "--quiet", sums_all], expected, payload, cfg.runs,
                          verify_only=True))
        two = " & ".join(f"sha256sum -c --quiet {shlex.quote(str(p))}" for p in half_files) + " & wait"
        specs.append(Spec("W6", "sha256sum x2", ["sh", "-c", two], expected, payload, cfg.runs, verify_only=True))
        self.record(specs)
        self.runner.run_all(specs)
        clear_dir(outdir)

    def run(self):
        self.facts = machine_facts()
        self.versions = versions(self.cfg)
        self.started = datetime.datetime.now(datetime.timezone.utc)
        self.loads.append(("start", loadavg()))
        if self.want("W3") or self.want("W5"):
            self.check_caps()
        if self.want("W1L") or self.want("W7L"):
            self.check_latency()
        steps = [("limits", self.limits), ("W1", self.w1_), ("W7", self.w7_), ("W1L", self.w1l_),
                 ("W7L", self.w7l_), ("W2", self.w2_), ("W3", self.w3_), ("W4", self.w4_), ("W5", self.w5_),
                 ("W6", self.w6_), ("W8", self.w8_)]
        for wid, fn in steps:
            if self.want(wid):
                log(f"=== {wid} (load average {loadavg()})")
                t = time.monotonic()
                fn()
                self.loads.append((wid, loadavg()))
                self.refs[f"seconds {wid}"] = time.monotonic() - t
                log(f"=== {wid} done in {time.monotonic() - t:.0f} s")
        self.finished = datetime.datetime.now(datetime.timezone.utc)
        self.rev = git_rev()
        self.quiet_waited = self.env.quiet_waited

    def save(self, path):
        """Everything the report needs, so `--render-only` can redraw it without a rerun."""
        state = {
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self.cfg).items()},
            "facts": self.facts, "versions": self.versions, "refs": self.refs, "loads": self.loads,
            "commands": self.commands, "started": self.started.isoformat(), "rev": self.rev,
            "quiet_waited": self.quiet_waited, "has_split": self.has_split,
            "cells": [{"wid": s.wid, "tool": s.tool, "argv": [str(a) for a in s.argv], "payload": s.payload,
                       "runs": s.runs, "note": s.note, "resume": s.resume, "results": s.results}
                      for s in self.cells.values()],
        }
        path.write_text(json.dumps(state, indent=1, default=str))


class SavedBench:
    """A finished benchmark read back from the JSON that Bench.save wrote."""

    def __init__(self, path):
        state = json.loads(path.read_text())
        self.cfg = Config(**state["config"])
        for k in ("facts", "versions", "refs", "rev", "quiet_waited", "has_split"):
            setattr(self, k, state[k])
        self.loads = [tuple(x) for x in state["loads"]]
        self.commands = [tuple(x) for x in state["commands"]]
        self.started = datetime.datetime.fromisoformat(state["started"])
        self.cells = {}
        for c in state["cells"]:
            spec = Spec(c["wid"], c["tool"], c["argv"], {}, c["payload"], c["runs"], resume=c["resume"],
                        note=c["note"], results=c["results"])
            self.cells[(spec.wid, spec.tool)] = spec

    def want(self, wid):
        return wid in self.cfg.workloads


# ---------------------------------------------------------------------------------------
# the report


class Report:
    COLS = ["haul", "aria2c", "curl", "wget2", "axel", "reference"]

    def __init__(self, bench):
        self.b = bench
        self.cfg = bench.cfg

    def cell(self, wid, tool):
        return self.b.cells.get((wid, tool))

    def val(self, wid, tool, fn, digits=2):
        """Formatted median of fn(spec) for a cell, FAILED or –."""
        spec = self.cell(wid, tool)
        if spec is None or not spec.results:
            return "–"
        bad = failed(spec)
        if bad:
            return bad
        v = fn(spec)
        text = fmt(v, digits)
        if spec.note and tool == "haul" and "split" in spec.note:
            text += " †"
        if len(spec.results) == 1 and self.cfg.runs > 1:
            text += " ¹"
        return text

    def row(self, label, wid, fn, tools=None, ref="", digits=2):
        cells = [self.val(wid, t, fn, digits) if (tools is None or t in tools) else "–" for t in self.COLS[:-1]]
        return f"| {label} | " + " | ".join(cells) + f" | {ref} |"

    @staticmethod
    def wall(s):
        return med(s, "wall")

    @staticmethod
    def cpu(s):
        return med(s, "cpu")

    @staticmethod
    def rss(s):
        return med(s, "rss_kib") / 1024

    @staticmethod
    def mbs(s):
        return s.payload / med(s, "wall") / 1e6

    @staticmethod
    def served(s):
        return med(s, "served") / s.payload

    @staticmethod
    def reqconn(s):
        return f"{med(s, 'requests'):,.0f} / {med(s, 'connections'):,.0f}"

    def per_gib(self, s):
        return med(s, "cpu") / (s.payload / (1 << 30))

    @staticmethod
    def reqproto(s):
        """requests / connections, and the protocols nginx logged (h2 = HTTP/2.0)."""
        protos = {}
        for r in s.results:
            for k, v in r.get("protocols", {}).items():
                protos[k] = protos.get(k, 0) + v
        names = ", ".join({"HTTP/2.0": "h2"}.get(k, k) for k in sorted(protos, key=protos.get, reverse=True))
        return f"{med(s, 'requests'):,.0f} / {med(s, 'connections'):,.0f}" + (f", {names}" if names else "")

    @staticmethod
    def relay(s):
        """The latency relay during the run: its CPU s, and how late its writes were."""
        rs = [r["relay"] for r in s.results if r.get("relay")]
        if not rs:
            return "–"
        cpu = statistics.median(r["cpu"] for r in rs)
        late = statistics.median(r["late_chunks"] / r["chunks"] if r["chunks"] else 0 for r in rs)
        worst = max(r["late_max_ms"] for r in rs)
        return f"{cpu:.2f} / {100 * late:.1f} % / {worst:.1f}"

    def latency_ref(self):
        d, r = self.b.refs.get("latency rtt direct ms"), self.b.refs.get("latency rtt relay ms")
        if d is None or r is None:
            return ""
        held = self.b.refs.get("latency delay ms")
        return (f"relay adds {r - d:.1f} ms RTT (HEAD round trip {r:.1f} ms vs {d:.2f} ms direct"
                + (f"; chunks held {held:.2f} ms each way" if held else "") + ")")

    def list_rows(self, wid, title, ref=""):
        """The rows of a W1-like workload."""
        rows = [self.row(f"{title}: wall s", wid, self.wall, digits=3, ref=ref),
                self.row(f"{wid} CPU user+sys s", wid, self.cpu),
                self.row(f"{wid} peak RSS MiB", wid, self.rss, digits=1),
                self.row(f"{wid} served / payload", wid, self.served, digits=3),
                self.row(f"{wid} requests / connections, protocol", wid, self.reqproto)]
        if wid.endswith("L"):
            rows.append(self.row(f"{wid} relay: CPU s / writes > 2 ms late / latest ms", wid, self.relay,
                                 ref="a relay that keeps up: CPU well under the wall, few late writes"))
        return rows

    def fastest(self, s):
        return med(s, "fastest_conn") / 1e6

    def ref_mbs(self, tool):
        s = self.cell("limits", tool)
        if s is None or not s.results or failed(s):
            return None
        return self.mbs(s)

    def table(self):
        b, cfg = self.b, self.cfg
        cap = 8 * RATE / 1e6
        lines = ["| workload / metric | " + " | ".join(self.COLS) + " |",
                 "|---|" + "---|" * len(self.COLS)]
        add = lines.append
        if b.want("W1"):
            add(self.row(f"W1 {cfg.w1_n:,} × {cfg.w1_size // 1024} KiB, {cfg.w1_j} at once: wall s", "W1", self.wall, digits=3))
            add(self.row("W1 CPU user+sys s", "W1", self.cpu))
            add(self.row("W1 peak RSS MiB", "W1", self.rss, digits=1))
            add(self.row("W1 served / payload", "W1", self.served, digits=3))
            add(self.row("W1 requests / connections", "W1", self.reqconn))
        size = f"{cfg.w1_n:,} × {cfg.w1_size // 1024} KiB"
        if b.want("W7"):
            lines += self.list_rows("W7", f"W7 {size} over HTTPS + HTTP/2, {cfg.w1_j} at once")
        if b.want("W1L"):
            lines += self.list_rows("W1L", f"W1L {size}, {cfg.w1_j} at once, +{2 * DELAY * 1000:.0f} ms RTT",
                                    ref=self.latency_ref())
        if b.want("W7L"):
            lines += self.list_rows("W7L", f"W7L {size} over HTTPS + HTTP/2, {cfg.w1_j} at once, "
                                           f"+{2 * DELAY * 1000:.0f} ms RTT", ref=self.latency_ref())
        if b.want("W2"):
            one, four = self.ref_mbs("curl 1 stream"), self.ref_mbs(f"curl {cfg.w2_n} streams")
            ref = f"curl → /dev/null: 1 stream {fmt(one)}, {cfg.w2_n} streams {fmt(four)}" if one else ""
            add(self.row(f"W2 {cfg.w2_n} × {cfg.big // MIB} MiB, {cfg.w2_j} at once: MB/s", "W2", self.mbs, ref=ref))
            add(self.row("W2 wall s", "W2", self.wall))
            add(self.row("W2 CPU user+sys s", "W2", self.cpu))
            add(self.row("W2 CPU s per GiB", "W2", self.per_gib, digits=3))
            add(self.row("W2 peak RSS MiB", "W2", self.rss, digits=1))
            add(self.row("W2 served / payload", "W2", self.served, digits=3))
        if b.want("W3"):
            for wid, label in (("W3", "nginx limit_rate port"), ("W3p", "socket-paced port")):
                add(self.row(f"W3 1 × {cfg.big // MIB} MiB, {label}: MB/s", wid, self.mbs,
                             ref=f"cap 8 × 20 MiB/s = {cap:.1f}; 1 conn = {RATE / 1e6:.1f}"))
                add(self.row(f"W3 {label}: fraction of the 8-connection cap", wid, lambda s: self.mbs(s) / cap,
                             digits=3))
                add(self.row(f"W3 {label}: CPU s / peak RSS MiB", wid,
                             lambda s: f"{med(s, 'cpu'):.2f} / {med(s, 'rss_kib') / 1024:.1f}"))
                add(self.row(f"W3 {label}: requests / connections", wid, self.reqconn))
            add(self.row("W3 limit_rate port: fastest single connection MB/s", "W3", self.fastest, digits=1,
                         ref=f"cap {RATE / 1e6:.1f}"))
        if b.want("W4"):
            add(self.row(f"W4 {cfg.w4_n:,} × {cfg.w4_size // 1024} KiB, {cfg.w4_j} at once: wall s", "W4", self.wall,
                         ref=f"aria2c --deferred-input: {self.val('W4', 'aria2c-deferred', self.wall)}"))
            add(self.row("W4 CPU user+sys s", "W4", self.cpu,
                         ref=f"aria2c --deferred-input: {self.val('W4', 'aria2c-deferred', self.cpu)}"))
            add(self.row("W4 peak RSS MiB", "W4", self.rss, digits=1,
                         ref=f"aria2c --deferred-input: {self.val('W4', 'aria2c-deferred', self.rss, 1)}"))
            add(self.row("W4 served / payload", "W4", self.served, digits=3))
            add(self.row("W4 requests / connections", "W4", self.reqconn))
            lo, hi = cfg.w4_scale
            add(self.row(f"W4 peak RSS MiB at {lo:,} URLs", f"W4@{lo}", self.rss, digits=1))
            add(self.row(f"W4 peak RSS MiB at {hi:,} URLs", f"W4@{hi}", self.rss, digits=1))
            add(self.row(f"W4 wall s at {hi:,} URLs", f"W4@{hi}", self.wall))
            add(f"| W4 RSS per extra URL, {cfg.w4_n:,} → {hi:,} (B) | "
                + " | ".join(self.per_url(t) for t in self.COLS[:-1]) + " | |")
        if b.want("W8"):
            pts = self.w8_points()
            add(self.row(f"W8 {cfg.w8_n:,} × {cfg.w4_size // 1024} KiB in one list, {cfg.w8_j} at once: wall s",
                         "W8", self.wall, ref="aria2c with `--deferred-input=true`"))
            add(self.row("W8 CPU user+sys s", "W8", self.cpu))
            add(self.row("W8 peak RSS MiB", "W8", self.rss, digits=1))
            add(self.row("W8 served / payload", "W8", self.served, digits=3))
            add(self.row("W8 requests / connections", "W8", self.reqconn))
            add(f"| W8 peak RSS MiB at {' / '.join(f'{n:,}' for n, _ in pts)} URLs | "
                + " | ".join(self.w8_rss(t) for t in self.COLS[:-1])
                + f" | cells {', '.join(w for _, w in pts)} |")
            add(f"| W8 RSS per extra URL (B), {pts[0][0]:,} → {pts[1][0]:,} / {pts[1][0]:,} → {pts[2][0]:,} | "
                + " | ".join(self.w8_per_url(t) for t in self.COLS[:-1]) + " | |")
            add(self.row("W8 haul SIGKILL at half the requests: files done at the kill / fetched again by the rerun",
                         "W8k", lambda s: f"{med(s, 'finished_at_kill'):,.0f} / {med(s, 'refetched'):,.0f}",
                         ref="fetched again must be 0"))
            add(self.row("W8 haul rerun after the kill: wall s / requests", "W8k",
                         lambda s: f"{med(s, 'wall'):.2f} / {med(s, 'requests'):,.0f}"))
            add(self.row(f"W8 `haul status -d` on the {cfg.w8_n:,}-file directory: wall s / peak RSS MiB", "W8",
                         lambda s: (f"{st['wall']:.2f} / {st['rss_kib'] / 1024:.1f}"
                                    + (f" (exit {st['exit']:.0f})" if st["exit"] else "")
                                    if (st := self.status_of(s)) else "–"), tools=("haul",)))
        if b.want("W5"):
            add(self.row(f"W5 1 × {cfg.big // MIB} MiB, capped, SIGKILL at 50 %: served / size", "W5", self.served,
                         digits=3, ref="1.000"))
            add(self.row("W5 wall of the rerun s", "W5", self.wall))
        if b.want("W6"):
            ref = (f"sha256sum: {self.val('W6', 'sha256sum', self.mbs)}; 2 in parallel: "
                   f"{self.val('W6', 'sha256sum x2', self.mbs)}")
            osl = b.refs.get("openssl sha256 16 KiB")
            if osl:
                ref += f"; openssl sha256: {osl:,.0f} per core"
            add(self.row(f"W6 verify {cfg.w2_n} × {cfg.big // MIB} MiB: MB/s", "W6", self.mbs, ref=ref))
            add(self.row("W6 CPU user+sys s", "W6", self.cpu,
                         ref=f"sha256sum: {self.val('W6', 'sha256sum', self.cpu)}; 2 in parallel: "
                             f"{self.val('W6', 'sha256sum x2', self.cpu)}"))
            add(self.row("W6 peak RSS MiB", "W6", self.rss, digits=1))
        return "\n".join(lines)

    def per_url(self, tool):
        lo, hi = self.cfg.w4_n, self.cfg.w4_scale[1]
        a, c = self.cell("W4", tool), self.cell(f"W4@{hi}", tool)
        if not a or not c or not a.results or not c.results or failed(a) or failed(c):
            return "–"
        return fmt((med(c, "rss_kib") - med(a, "rss_kib")) * 1024 / (hi - lo), 0)

    def w8_points(self):
        """(URLs, cell) of W8's scale points, smallest first: W4's when they match, then W8."""
        cfg = self.cfg
        lo, hi = cfg.w8_scale
        if self.b.want("W4") and (cfg.w4_n, cfg.w4_scale[1]) == tuple(cfg.w8_scale):
            cells = ("W4", f"W4@{hi}")
        else:
            cells = (f"W8@{lo}", f"W8@{hi}")
        return [(lo, cells[0]), (hi, cells[1]), (cfg.w8_n, "W8")]

    def rss_at(self, wid, tool):
        s = self.cell(wid, tool)
        if s is None or not s.results or failed(s):
            return None
        return med(s, "rss_kib") * 1024

    def w8_rss(self, tool):
        vals = [self.rss_at(w, tool) for _, w in self.w8_points()]
        return " / ".join("–" if v is None else f"{v / MIB:,.1f}" for v in vals)

    def w8_per_url(self, tool):
        pts = [(n, self.rss_at(w, tool)) for n, w in self.w8_points()]
        out = []
        for (na, a), (nb, b) in zip(pts, pts[1:]):
            out.append("–" if a is None or b is None else f"{(b - a) / (nb - na):,.0f}")
        return " / ".join(out)

    @staticmethod
    def status_of(s):
        st = [r["status"] for r in s.results if r.get("status")]
        if not st:
            return None
        return {k: statistics.median(x[k] for x in st) for k in ("wall", "rss_kib", "exit")}

    # -- comparisons with the targets
    def get(self, wid, tool, fn):
        s = self.cell(wid, tool)
        if s is None or not s.results or failed(s):
            return None
        return fn(s)

    def verdicts(self):
        b, cfg = self.b, self.cfg
        out = []

        def say(ok):
            return "**met**" if ok else "**missed**"

        def wall_vs(w, target, peers):
            """The target line of a workload judged on wall time against the
            fastest of `peers` that ran."""
            h = self.get(w, "haul", self.wall)
            got = {t: v for t in peers if (v := self.get(w, t, self.wall))}
            if h is None or not got:
                out.append(f"- **{w}**: no comparison (a cell failed or was not run).")
                return
            best = min(got, key=got.get)
            r = h / got[best]
            out.append(f"- **{w}** (target: {target}): haul {h:.3f} s vs {best} {got[best]:.3f} s, "
                       f"{r:.2f} × — {say(r <= 1.0)}.")

        if b.want("W1"):
            wall_vs("W1", "haul wall ≤ curl's", ("curl",))
            hc, cc = self.get("W1", "haul", self.cpu), self.get("W1", "curl", self.cpu)
            if hc and cc:
                out.append(f"- **W1 CPU** (target: haul user+sys ≤ 2 × curl's): haul {hc:.2f} s vs curl {cc:.2f} s, "
                           f"{hc / cc:.2f} × — {say(hc <= 2 * cc)}.")
        if b.want("W7"):
            wall_vs("W7", "haul wall ≤ curl's, HTTPS + HTTP/2", ("curl",))
        if b.want("W1L"):
            wall_vs("W1L", f"haul wall ≤ the best peer's, all `-j {cfg.w1_j}`, +20 ms RTT",
                    ("aria2c", "curl", "wget2"))
        if b.want("W7L"):
            wall_vs("W7L", "haul wall ≤ wget2's, HTTPS + HTTP/2, +20 ms RTT", ("wget2",))
        if b.want("W2"):
            h, w, c = (self.get("W2", t, self.mbs) for t in ("haul", "wget2", "curl"))
            hc, wc = self.get("W2", "haul", self.per_gib), self.get("W2", "wget2", self.per_gib)
            if h and w and c and hc and wc:
                out.append(f"- **W2** (target: haul MB/s ≥ 0.75 × wget2's and ≥ 1.2 × curl's, hashing every byte): "
                           f"haul {h:,.0f} MB/s vs wget2 {w:,.0f} ({h / w:.2f} ×) — {say(h >= 0.75 * w)}; vs curl "
                           f"{c:,.0f} ({h / c:.2f} ×) — {say(h >= 1.2 * c)}. CPU {hc:.3f} s/GiB vs wget2's {wc:.3f} "
                           f"({hc / wc:.2f} ×); haul hashes while it writes, wget2 does not"
                           + (f" (sha256 alone costs {(1 << 30) / (osl * 1e6):.2f} CPU s/GiB at openssl's speed)."
                              if (osl := b.refs.get("openssl sha256 16 KiB")) else "."))
            else:
                out.append("- **W2**: no comparison (a cell failed or was not run).")
        if b.want("W3"):
            cap = 8 * RATE / 1e6
            h, x = self.get("W3p", "haul", self.mbs), self.get("W3p", "axel", self.mbs)
            hs = self.get("W3p", "haul", self.served)
            if h and x and hs is not None:
                out.append(f"- **W3** (target: on the socket-paced port haul `--split 8` ≥ 0.98 × axel's MB/s, served "
                           f"≤ 1.01 × the file): haul {h:.1f} MB/s vs axel {x:.1f} ({h / x:.3f} ×) — "
                           f"{say(h >= 0.98 * x)}; served {hs:.3f} × — {say(hs <= 1.01)}.")
            else:
                out.append("- **W3**: no comparison (a cell failed or was not run).")
            parts = []
            for wid, label in (("W3", "limit_rate port"), ("W3p", "socket-paced port")):
                h = self.get(wid, "haul", self.mbs)
                if h is not None:
                    parts.append(f"{label} {h / cap:.3f}")
            out.append("- W3, for reference (issue 3's target, ≥ 0.98 × the 8-connection cap): haul's share of the "
                       "cap on the " + "; ".join(parts) + ".")
        if b.want("W4"):
            hw, cw = self.get("W4", "haul", self.wall), self.get("W4", "curl", self.wall)
            hr, cr = self.get("W4", "haul", self.rss), self.get("W4", "curl", self.rss)
            pu = self.per_url("haul")
            if hw and cw and hr and cr:
                out.append(f"- **W4** (targets: haul wall ≤ curl's, peak RSS ≤ curl's, ≤ 150 B per extra URL): "
                           f"wall {hw:.2f} s vs {cw:.2f} s ({hw / cw:.2f} ×) — {say(hw <= cw)}; RSS {hr:.1f} MiB vs "
                           f"{cr:.1f} MiB ({hr / cr:.2f} ×) — {say(hr <= cr)}; per extra URL {pu} B"
                           + (f" — {say(float(pu.replace(',', '')) <= 150)}." if pu != "–" else "."))
            else:
                out.append("- **W4**: no comparison (a cell failed or was not run).")
        if b.want("W8"):
            n = cfg.w8_n
            scaled = "" if n == 1_000_000 else f" (the targets are for 1,000,000 URLs; this run had {n:,})"
            hr = self.get("W8", "haul", self.rss)
            k = self.cell("W8k", "haul")
            st = self.status_of(self.cell("W8", "haul")) if self.cell("W8", "haul") else None
            parts = []
            if hr is not None:
                parts.append(f"peak RSS {hr:.1f} MiB — {say(hr <= 200)}")
            if k is not None and k.results and "refetched" in k.results[0]:
                r = k.results[0]
                exact = not any("output" in p for p in r["problems"]) and r["exit"] == 0
                parts.append(f"rerun after SIGKILL fetched {r['refetched']:,} of the {r['finished_at_kill']:,} files "
                             f"done at the kill again and its outputs are {'exact' if exact else 'NOT exact'} — "
                             f"{say(r['refetched'] == 0 and exact)}")
            if st is not None:
                parts.append(f"`haul status` {st['wall']:.2f} s, {st['rss_kib'] / 1024:.1f} MiB — "
                             f"{say(st['wall'] <= 2 and st['rss_kib'] <= 100 * 1024 and not st['exit'])}")
            if parts:
                out.append(f"- **W8** (targets: peak RSS ≤ 200 MiB; the rerun after SIGKILL half-way fetches no "
                           f"finished file and ends exact; `haul status` ≤ 2 s and ≤ 100 MiB){scaled}: "
                           + "; ".join(parts) + ".")
            else:
                out.append("- **W8**: no comparison (a cell failed or was not run).")
        if b.want("W5"):
            h = self.get("W5", "haul", self.served)
            if h is not None:
                split = "" if b.has_split else " (one connection: no `--split` in this build)"
                verdict = say(h <= 1.01) if b.has_split else ("not measured for `--split`; the one-connection "
                                                              f"fallback is within it" if h <= 1.01 else say(False))
                out.append(f"- **W5** (target: ≤ 1.01 × size served): haul {h:.3f} ×{split} — {verdict}.")
        if b.want("W6"):
            h, a = self.get("W6", "haul", self.mbs), self.get("W6", "aria2c", self.mbs)
            if h and a:
                out.append(f"- **W6** (target: haul verify ≥ 2 × aria2c's MB/s): haul {h:,.0f} MB/s vs aria2c "
                           f"{a:,.0f} ({h / a:.2f} ×) — {say(h >= 2 * a)}.")
        return "\n".join(out)

    def runs_detail(self):
        lines = ["| cell | each run: wall s (served/payload) [CPU s of nginx+relay / of other processes] | notes |",
                 "|---|---|---|"]
        for (wid, tool), s in self.b.cells.items():
            walls = ", ".join(
                f"{r['wall']:.3f} ({r['served'] / s.payload:.3f}) [{r['server_cpu']:.2f} / {r['other_cpu']:.2f}]"
                + ("" if r["ok"] else " FAILED") for r in s.results)
            notes = [s.note] if s.note else []
            for r in s.results:
                notes += r.get("problems", [])
                if r.get("note"):
                    notes.append(r["note"])
                if r.get("relay"):
                    x = r["relay"]
                    notes.append(f"run {r['run']}: relay {x['cpu']:.2f} CPU s, {x['chunks']:,} writes, "
                                 f"{x['late_chunks']} > 2 ms late, mean {x['late_mean_ms']:.2f} ms late, "
                                 f"latest {x['late_max_ms']:.1f} ms")
                if s.resume and "first" in r:
                    f = r["first"]
                    if f.get("requests_at_kill"):
                        notes.append(f"run {r['run']}: killed after {f['requests_at_kill']:,} requests logged "
                                     f"({f['wall']:.1f} s), {r['finished_at_kill']:,} files done")
                    else:
                        notes.append(f"run {r['run']}: killed at {f['delivered_at_kill'] / s.payload:.2f} "
                                     f"delivered, first run served {f['body'] / s.payload:.3f}")
            lines.append(f"| {wid} {tool} | {walls} | {'; '.join(dict.fromkeys(notes))} |")
        return "\n".join(lines)

    def contended(self):
        runs = [(s, r) for s in self.b.cells.values() for r in s.results]
        busy = [f"{s.name} run {r['run']}" for s, r in runs if r["other_cpu"] > 0.25 * r["wall"] and r["wall"] > 0.2]
        if not busy:
            return "No run saw other processes use more than a quarter of a core on average."
        return (f"{len(busy)} of {len(runs)} runs saw other processes use more than a quarter of a core on "
                f"average (their figures are less reliable): {', '.join(busy)}.")

    def commands(self):
        lines = []
        for wid, tool, cmd, note in self.b.commands:
            lines.append(f"# {wid} {tool}" + (f" — {note}" if note else ""))
            lines.append(cmd)
        return "\n".join(lines)

    def render(self):
        b, cfg = self.b, self.cfg
        f, v = b.facts, b.versions
        mode = "quick smoke test" if cfg.quick else "full run"
        runs = f"median of {cfg.runs} runs" if cfg.runs > 1 else "one run per cell"
        caps = ", ".join(f"{k.replace('cap check ', '')} {val:.1f} MB/s" for k, val in b.refs.items()
                         if k.startswith("cap check"))
        parts = [
            MARK_BEGIN,
            "",
            f"## Results ({mode}, {b.started:%Y-%m-%d %H:%M} UTC)",
            "",
            f"{runs}; W3 single-connection references, the W4 scale points and W5 single-connection "
            f"tools ran {cfg.w3_ref_runs}, {cfg.scale_runs} and {cfg.w5_runs_single} time(s) (marked ¹ where "
            "that is one). MB = 10⁶ bytes. Wall from a monotonic clock around the process; CPU (user+sys) "
            "and peak RSS from GNU time. served / payload = response body bytes in nginx's access log "
            "for the run / the bytes the run had to fetch. A cell reads FAILED when the tool exited "
            "non-zero or any output's sha256 was wrong. † = haul without `--split` (not in this build). "
            "In \"Every run\", other processes' CPU is the machine's process CPU (/proc/stat user+nice+system) "
            "minus the tool's and the servers' during the run; the kernel accounts the two sides slightly "
            "differently, so it reads a little negative on network-heavy runs: only a clearly positive "
            "figure means other work shared the cores.",
            "",
            self.table(),
            "",
            "### Against the targets (ratios from this run)",
            "",
            self.verdicts(),
            "",
            "### Machine",
            "",
            f"- {f['nproc']} cores, {f['cpu']} (SHA-NI: {'yes' if f['sha_ni'] else 'no'}), {f['memory']} RAM, "
            f"{f['os']}, kernel {f['kernel']}",
            f"- load average at start / after each workload: " + "; ".join(f"{k} {l}" for k, l in b.loads),
            f"- the machine is shared: before each run the script waited until other processes used < "
            f"{QUIET_CORES} core (at most {QUIET_WAIT_PER_RUN} s a run); it waited {b.quiet_waited:.0f} s in "
            f"all. {self.contended()}",
            f"- capped-port check (one curl, first 32 MiB): {caps}",
            *([f"- W8 took {b.refs['seconds W8'] / 60:.1f} minutes to run (all its cells, output checks included)"]
              if "seconds W8" in b.refs else []),
            *([f"- latency relay check: {self.latency_ref()} (meant: {2 * DELAY * 1000:.0f} ms)"]
              if self.latency_ref() else []),
            f"- haul: `{v['haul']}` at commit {b.rev}; `--split`: {'yes' if b.has_split else 'no'}",
            *(f"- {k}: `{v[k]}`" for k in ("aria2c", "curl", "wget2", "axel", "nginx", "openssl", "sha256sum",
                                            "python")),
            "",
            "### Every run",
            "",
            self.runs_detail(),
            "",
            "### Exact commands",
            "",
            "Lists are under /tmp/haul-bench/lists (one URL a line; curl's is a `-K` file of "
            "`url`/`output` pairs); outputs go to the tmpfs /tmp/haul-bench/out and are cleared "
            "between runs.",
            "",
            "```sh",
            self.commands(),
            "```",
            "",
            MARK_END,
        ]
        return "\n".join(parts) + "\n"


def write_benchmarks_md(section):
    path = REPO / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# haul benchmarks\n\n"
    if MARK_BEGIN in text and MARK_END in text:
        head, rest = text.split(MARK_BEGIN, 1)
        _, tail = rest.split(MARK_END, 1)
        text = head + section.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)
    log(f"wrote {path}")


def interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def render_only(write):
    path = ROOT / "results.json"
    if not path.exists():
        raise BenchError(f"{path} not found: run the benchmark first")
    bench = SavedBench(path)
    section = Report(bench).render()
    (ROOT / "report.md").write_text(section)
    print(section)
    if write if write is not None else bench.cfg.write:
        write_benchmarks_md(section)


def main(argv):
    if "--render-only" in argv:
        write = False if "--no-write" in argv else (True if "--write" in argv else None)
        return render_only(write)
    cfg = parse_args(argv)
    if not cfg.haul.is_file():
        raise SystemExit(f"bench: haul binary {cfg.haul} not found; build it with `cargo build --release`")
    # Ctrl-C, SIGTERM and SIGHUP all unwind through the finally below, which cleans up (SIGINT
    # explicitly: a shell starts background jobs with it ignored, and Python keeps that).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)
    lock = claim_workspace()  # noqa: F841 (held open until exit)
    for d in (DATA, LISTS, LOGS):
        d.mkdir(parents=True, exist_ok=True)
    ensure_tools()
    env = Environment(cfg)
    t0 = time.monotonic()
    try:
        bench = Bench(cfg, env)
        bench.fixtures()
        env.mount_tmpfs()
        env.start_nginx()
        env.start_pacer()
        if bench.want("W1L") or bench.want("W7L"):
            env.start_latency()
        bench.run()
    finally:
        env.close()
    section = Report(bench).render()
    (ROOT / "report.md").write_text(section)
    bench.save(ROOT / "results.json")
    print()
    print(section)
    if cfg.write:
        write_benchmarks_md(section)
    else:
        log(f"report saved to {ROOT / 'report.md'} (BENCHMARKS.md untouched; --write to update it)")
    log(f"total {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except BenchError as err:
        print(f"bench: error: {err}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("bench: interrupted; cleaned up", file=sys.stderr)
        sys.exit(130)
