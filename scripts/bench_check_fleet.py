"""Wall time and peak memory of `check` over many connections, one run
against the same run sharded in two slices and merged (`check merge`).

Starts the moto emulator (tests/fixtures/moto_guard.py) on loopback, seeds
INSTANCES instances in each of REGIONS regions, writes a .spc with N aws
connections (connection i covers region i mod REGIONS, its own static keys;
moto puts every key in the same account, so connections in one region see the
same instances: rows differ by connection_name), then measures, each run the
median of RUNS:

- `check --config` over 1 connection (the fixed cost: start, mod, SQLite);
- `check --config` over every count in COUNTS;
- a report of BIG_ROWS rows in SHARDS JSON files, merged;
- the largest count in two slices (first half, second half): one after the
  other and both at once (two CI jobs), then `check merge` of their JSON and
  of their snapshots; the merged JSON must equal the combined run's.

Peak RSS is the child's own, as GNU time (/usr/bin/time, Debian package
`time`) reports it. Prints a markdown table;
nothing is asserted about speed.

usage: target/pyenv/bin/python scripts/bench_check_fleet.py [BINARY]
  BINARY: the steampipe-plugin-aws to measure (default target/release, else
  target/debug). MERGE_BINARY: another binary for `check merge` (default
  BINARY). COUNTS (default "10,50"), INSTANCES (10), REGIONS (5), RUNS (3);
  BIG_ROWS (100000) and SHARDS (20): a synthetic report of that many rows (the
  slice's JSON rows replicated with distinct resources) in that many files,
  merged to json, snapshot and csv.
  ENDPOINT=fast: tests/fixtures/bench_endpoint.py instead of moto (pages from
  memory, LATENCY_MS (100) per DescribeInstances page, answered concurrently,
  so that latency and the plugin's concurrency show rather than moto's CPU);
  REGIONS_PER_CONNECTION (1). STEAMPIPE_MAX_CONCURRENT_CONNECTIONS is passed on.
"""
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGION_NAMES = ["us-east-1", "eu-west-1", "us-west-2", "ap-southeast-2", "eu-central-1",
                "us-east-2", "eu-west-2", "ap-northeast-1", "ca-central-1", "sa-east-1"]


def env_int(name, default):
    return int(os.environ.get(name, default))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_moto(workdir):
    port = free_port()
    p = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "tests/fixtures/moto_guard.py"), str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=workdir, text=True)
    line = p.stdout.readline().strip()
    if line != "ready":
        sys.exit(f"moto did not start on port {port}")
    return p, f"http://127.0.0.1:{port}"


def start_fast(workdir, per_region, latency_ms, regions):
    """tests/fixtures/bench_endpoint.py: DescribeInstances pages recorded from
    moto, served from memory with a fixed latency per page (AWS-like, and
    answered concurrently), `per_region` instances in every region."""
    p = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "tests/fixtures/bench_endpoint.py"),
         "--instances", str(per_region), "--latency-ms", str(latency_ms),
         "--regions", ",".join(regions)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=workdir, text=True)
    line = p.stdout.readline().split()
    if len(line) != 2 or line[0] != "ready":
        sys.exit("bench_endpoint.py did not start")
    return p, f"http://127.0.0.1:{line[1]}"


def seed(endpoint, regions, per_region):
    for r in regions:
        ec2 = boto3.client("ec2", region_name=r, endpoint_url=endpoint,
                           aws_access_key_id="AKIDSEED", aws_secret_access_key="seed")
        # Half require IMDSv2, half do not: the control gives ok and alarm rows.
        ec2.run_instances(ImageId="ami-03cf127a", MinCount=per_region // 2, MaxCount=per_region // 2,
                          MetadataOptions={"HttpTokens": "required"})
        rest = per_region - per_region // 2
        ec2.run_instances(ImageId="ami-03cf127a", MinCount=rest, MaxCount=rest)


def spc(endpoint, names, regions, per_conn=1):
    out = []
    for i, n in names:
        mine = ", ".join(f'"{regions[(i + k) % len(regions)]}"' for k in range(per_conn))
        out.append(
            f'connection "{n}" {{\n  plugin = "aws"\n  regions = [{mine}]\n'
            f'  default_region = "us-east-1"\n  endpoint_url = "{endpoint}"\n'
            f'  access_key = "AKIDBENCH{i:05d}"\n  secret_key = "bench"\n}}\n')
    return "".join(out)


TIME = "/usr/bin/time"


def measured(cmd, cwd, tag):
    """`cmd` under GNU time, which reports the child's own peak RSS: a child
    forked from this Python would count Python's RSS as its own (Linux keeps
    the larger of the two across exec)."""
    out = os.path.join(cwd, f"rss.{tag}")
    return [TIME, "-o", out, "-f", "%M", *cmd], out


def read_rss(path):
    with open(path) as f:
        return int(f.read().split()[-1]) / 1024


def timed(cmd, cwd):
    """(seconds, peak RSS MB, exit code, stdout) of one child."""
    wrapped, rss_file = measured(cmd, cwd, "one")
    t = time.monotonic()
    p = subprocess.run(wrapped, cwd=cwd, capture_output=True, env=child_env())
    secs = time.monotonic() - t
    if p.returncode not in (0, 1):
        sys.exit(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.decode(errors='replace')}")
    return secs, read_rss(rss_file), p.returncode, p.stdout


def timed_pair(cmds, cwd):
    """Both commands at once: (wall seconds, the larger peak RSS in MB, None)."""
    wrapped = [measured(c, cwd, f"pair{i}") for i, c in enumerate(cmds)]
    t = time.monotonic()
    ps = [subprocess.Popen(w, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           env=child_env()) for w, _ in wrapped]
    for p in ps:
        _, err = p.communicate()
        if p.returncode not in (0, 1):
            sys.exit(f"exit {p.returncode}: {err.decode(errors='replace')}")
    return time.monotonic() - t, max(read_rss(f) for _, f in wrapped), None


def find_control(group):
    for c in group.get("controls") or []:
        return c
    for g in group.get("groups") or []:
        c = find_control(g)
        if c is not None:
            return c
    return None


def child_env():
    e = dict(os.environ)
    e["AWS_EC2_METADATA_DISABLED"] = "true"
    e["POWERPIPE_DISPLAY_WIDTH"] = "100"
    for k in ("AWS_PROFILE", "PP_VAR_common_dimensions", "PP_VAR_tag_dimensions"):
        e.pop(k, None)
    return e


def median_of(runs, f):
    results = [f() for _ in range(runs)]
    secs = statistics.median(r[0] for r in results)
    rss = statistics.median(r[1] for r in results)
    return secs, rss, results[-1]


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else None
    if binary is None:
        for p in ("target/release/steampipe-plugin-aws", "target/debug/steampipe-plugin-aws"):
            if os.path.exists(os.path.join(ROOT, p)):
                binary = os.path.join(ROOT, p)
                break
    if not binary or not os.path.exists(binary):
        sys.exit("no steampipe-plugin-aws binary: cargo build --release, or pass its path")
    binary = os.path.abspath(binary)
    if not os.path.exists(TIME):
        sys.exit(f"{TIME} is missing: apt-get install time")
    merge_binary = os.path.abspath(os.environ.get("MERGE_BINARY", binary))
    counts = [int(c) for c in os.environ.get("COUNTS", "10,50").split(",")]
    per_region = env_int("INSTANCES", 10)
    regions = REGION_NAMES[:env_int("REGIONS", 5)]
    runs = env_int("RUNS", 3)
    dims = '--var=common_dimensions=["account_id","connection_name","region"]'

    fast = os.environ.get("ENDPOINT", "moto") == "fast"
    per_conn = env_int("REGIONS_PER_CONNECTION", 1)
    work = tempfile.mkdtemp(prefix="bench_check_fleet.")
    if fast:
        latency = env_int("LATENCY_MS", 100)
        moto, endpoint = start_fast(work, per_region, latency, regions)
        print(f"fast endpoint: {per_region} instances in each of {len(regions)} regions, "
              f"{latency} ms per DescribeInstances page; {per_conn} region(s) per connection; "
              f"STEAMPIPE_MAX_CONCURRENT_CONNECTIONS={os.environ.get('STEAMPIPE_MAX_CONCURRENT_CONNECTIONS', '(default)')}")
    else:
        moto, endpoint = start_moto(work)
    try:
        t = time.monotonic()
        if not fast:
            seed(endpoint, regions, per_region)
            print(f"moto: seeded {per_region} instances in each of {len(regions)} regions "
                  f"in {time.monotonic() - t:.1f} s; {per_conn} region(s) per connection")
        print(f"binary {binary}; merge binary {merge_binary}")
        per_region_rows = per_region * per_conn
        rows = []

        def check(conns, name, extra=()):
            path = os.path.join(work, f"{name}.spc")
            with open(path, "w") as f:
                f.write(spc(endpoint, conns, regions, per_conn))
            return [binary, "check", "--config", path, dims, "--output", "none", *extra]

        names = lambda lo, hi: [(i, f"aws_{i:05d}") for i in range(lo, hi)]
        one = check(names(0, 1), "one")
        s, rss, _ = median_of(runs, lambda: timed(one, work))
        rows.append(("check, 1 connection (baseline: fixed cost)", per_region_rows, s, rss))
        for n in counts:
            cmd = check(names(0, n), f"all{n}")
            s, rss, _ = median_of(runs, lambda: timed(cmd, work))
            rows.append((f"check, {n} connections", n * per_region_rows, s, rss))

        n = counts[-1]
        half = n // 2
        a_json, b_json, all_json = (os.path.join(work, f) for f in ("a.json", "b.json", "all.json"))
        a_pps, b_pps = os.path.join(work, "a.pps"), os.path.join(work, "b.pps")
        slice_a = check(names(0, half), "slice_a", ["--export", a_json, "--export", a_pps])
        slice_b = check(names(half, n), "slice_b", ["--export", b_json, "--export", b_pps])
        whole = check(names(0, n), f"all{n}", ["--export", all_json])
        timed(whole, work)
        sa, ra, _ = median_of(runs, lambda: timed(slice_a, work))
        sb, rb, _ = median_of(runs, lambda: timed(slice_b, work))
        rows.append((f"check, slice A ({half} connections)", half * per_region_rows, sa, ra))
        rows.append((f"check, slice B ({n - half} connections)", (n - half) * per_region_rows, sb, rb))
        ps, prss, _ = median_of(runs, lambda: timed_pair([slice_a, slice_b], work))
        rows.append(("check, slices A and B at once (2 jobs, 2 cores; RSS of the larger)",
                     n * per_region_rows, ps, prss))
        for kind, files in (("JSON", [a_json, b_json]), ("snapshots", [a_pps, b_pps])):
            cmd = [merge_binary, "check", "merge", *files, "--output", "json"]
            s, rss, last = median_of(runs, lambda: timed(cmd, work))
            rows.append((f"check merge of the 2 slices' {kind}", n * per_region_rows, s, rss))
            with open(all_json) as f:
                want = json.load(f)
            got = json.loads(last[3])
            if got != want:
                sys.exit(f"merge of the slices' {kind} differs from the combined run's JSON")

        # A report at fleet scale: the slice's JSON with its rows replicated
        # (distinct resources and connection names) into SHARDS files of
        # BIG_ROWS rows in all, merged.
        big, shards = env_int("BIG_ROWS", 100000), env_int("SHARDS", 20)
        with open(a_json) as f:
            template = json.load(f)
        files = []
        for k in range(shards):
            doc = json.loads(json.dumps(template))
            control = find_control(doc)
            src = control["results"]
            rows_k = []
            for j in range(big // shards):
                r = json.loads(json.dumps(src[j % len(src)]))
                r["resource"] = f"{r['resource']}-{k}-{j}"
                for d in r["dimensions"] or []:
                    if d["key"] == "connection_name":
                        d["value"] = f"aws_shard{k:03d}_{j // per_region:05d}"
                rows_k.append(r)
            control["results"] = rows_k
            path = os.path.join(work, f"shard{k:03d}.json")
            with open(path, "w") as f:
                json.dump(doc, f, indent=2)
            files.append(path)
        size = sum(os.path.getsize(f) for f in files) / 1e6
        for fmt in ("json", "snapshot", "csv"):
            cmd = [merge_binary, "check", "merge", *files, "--output", fmt]
            s, rss, _ = median_of(runs, lambda: timed(cmd, work))
            rows.append((f"check merge of {shards} JSON files ({size:.0f} MB), --output {fmt}",
                         big, s, rss))

        print()
        print("| what | result rows | wall time (median of %d) | peak RSS |" % runs)
        print("|---|---|---|---|")
        for what, nrows, s, rss in rows:
            print(f"| {what} | {nrows} | {s:.2f} s | {rss:.1f} MB |")
        print()
        print("merged JSON = combined run's JSON: yes (both merges)")
    finally:
        moto.terminate()
        moto.wait()


if __name__ == "__main__":
    main()
