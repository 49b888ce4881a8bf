"""What every bench script records (../shared/BENCH.md): the machine, and the
result written twice under bench/results/ (NAME.json for machines, NAME.md
for people)."""
import json
import os
import platform

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def machine():
    """The "machine" object of a result: CPU, cores, no GPU, load average at the end."""
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "gpu": None,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()]}


def write_results(name, out, md_lines):
    """bench/results/NAME.json (out) and NAME.md (md_lines joined); returns the Markdown."""
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, name + ".json"), "w") as f:
        json.dump(out, f, indent=1)
    md = "\n".join(md_lines) + "\n"
    with open(os.path.join(RESULTS, name + ".md"), "w") as f:
        f.write(md)
    return md
