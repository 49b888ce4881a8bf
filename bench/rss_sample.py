#!/usr/bin/env python3
"""Run a command and sample its memory every --interval seconds from
/proc/PID/status: peak VmRSS (VmHWM, the kernel's own peak) and, at the
sample with the highest RSS, how it splits into anonymous memory (heap: the
model, optimizer state, buffers) and file pages (the mmap'ed dataset).
Also the peak of each part on its own. Prints one JSON object on the last
line of stderr-free stdout; the command's stdout goes to --out.

Usage: python3 bench/rss_sample.py [--interval 0.05] [--out FILE] -- COMMAND ...
"""
import json, subprocess, sys, time


def status(pid):
    d = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                    d[k] = int(v.split()[0])  # kB
    except OSError:
        pass
    return d


def main():
    argv = sys.argv[1:]
    cmd = argv[argv.index("--") + 1:]
    opts = argv[:argv.index("--")]
    interval, out = 0.05, None
    for i, o in enumerate(opts):
        if o == "--interval":
            interval = float(opts[i + 1])
        if o == "--out":
            out = opts[i + 1]
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=open(out, "w") if out else subprocess.DEVNULL)
    peak = {"VmRSS": 0}
    peak_anon = peak_file = hwm = 0
    trace = []
    while p.poll() is None:
        s = status(p.pid)
        if s:
            hwm = max(hwm, s.get("VmHWM", 0))
            if s.get("VmRSS", 0) > peak["VmRSS"]:
                peak = dict(s, t=round(time.time() - t0, 2))
            peak_anon = max(peak_anon, s.get("RssAnon", 0))
            peak_file = max(peak_file, s.get("RssFile", 0))
            trace.append((round(time.time() - t0, 2), s.get("RssAnon", 0) // 1024, s.get("RssFile", 0) // 1024))
        time.sleep(interval)
    res = {"rc": p.returncode, "seconds": round(time.time() - t0, 2), "peak_rss_mb": hwm // 1024,
           "at_peak": {"rss_mb": peak.get("VmRSS", 0) // 1024, "anon_mb": peak.get("RssAnon", 0) // 1024,
                       "file_mb": peak.get("RssFile", 0) // 1024, "t": peak.get("t")},
           "peak_anon_mb": peak_anon // 1024, "peak_file_mb": peak_file // 1024,
           "trace_every_10th": trace[::10]}
    print(json.dumps(res))


if __name__ == "__main__":
    main()
