"""The results as a markdown table and a JSON file, and the issue's targets checked against them."""

import json
from pathlib import Path

ALL, DISTINCT = "all pixels", "distinct colours"


def seconds_text(seconds):
    """A time in the unit that reads best: '6.3 ms', '1.82 s'."""
    if seconds is None:
        return "-"
    if abs(seconds) < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    if abs(seconds) < 1:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def timing_text(summary):
    """'median [min – max] ×n'."""
    return (f"{seconds_text(summary['median'])} [{seconds_text(summary['min'])} – "
            f"{seconds_text(summary['max'])}] ×{summary['n']}")


def value_text(value):
    return "-" if value is None else f"{value:.6g}"


def relative_gap(ours, theirs):
    """(ours - theirs) / |theirs|, or None."""
    if ours is None or theirs is None or theirs == 0:
        return None
    return (ours - theirs) / abs(theirs)


# ------------------------------------------------------------------ targets

def _find(rows, case, image, ours, theirs):
    for row in rows:
        if (row["case"], row["image"], row["emseg"]["data"], row["sklearn"]["data"]) == (case, image, ours, theirs):
            return row
    return None


def _memory(records, model, image, library, data):
    for record in records:
        if (record["model"], record["image_name"], record["library"], record["data"]) == (model, image, library, data):
            return record
    return None


def targets(results):
    """The issue's targets table, each with the measured figure and whether it holds (None: not measured)."""
    rows = results.get("cases", [])
    checks = []

    def speed(label, case, image, ours, theirs, minimum, bound_within=None):
        row = _find(rows, case, image, ours, theirs)
        measured, reached = None, None
        if row is not None:
            measured = f"{row['speedup']:.1f}×"
            reached = row["speedup"] >= minimum
            if bound_within is not None:
                gap = relative_gap(row["emseg"]["value"], row["sklearn"]["value"])
                measured += f", lower bound {gap:+.2%}"
                reached = reached and abs(gap) <= bound_within
        goal = f"≥ {minimum:g}×" + ("" if bound_within is None else f", lower bound within {bound_within:.1%}")
        checks.append(dict(target=label, goal=goal, measured=measured, reached=reached))

    speed("GMM per iteration, all pixels of china.jpg, k=10", "gmm-iter", "china", ALL, ALL, 10)
    speed("GMM per iteration, distinct colours of china.jpg (vs scikit-learn on all pixels)",
          "gmm-iter", "china", DISTINCT, ALL, 30)
    for image, minimum in (("china", 15), ("mosaic12", 100)):
        for data in (DISTINCT, ALL):
            speed(f"GMM fit end to end, defaults, k=10, {image}, emseg on {data}", "gmm-fit", image, data, ALL,
                  minimum, bound_within=0.005)
    for image in ("china", "mosaic12"):
        speed(f"KMeans per iteration, all pixels, {image}", "kmeans-iter", image, ALL, ALL, 1.5)
    for image, minimum in (("china", 3), ("mosaic12", 20)):
        speed(f"KMeans fit through the image pipeline (distinct colours), {image}", "kmeans-fit", image,
              DISTINCT, ALL, minimum)

    memory = results.get("memory", [])
    theirs = _memory(memory, "gmm", "mosaic12", "sklearn", "all")
    for data in ("distinct", "all"):
        ours = _memory(memory, "gmm", "mosaic12", "emseg", data)
        measured = reached = None
        if ours and theirs:
            share = ours["peak_mib"] / theirs["peak_mib"]
            measured = f"{ours['peak_mib']:.0f} MiB vs {theirs['peak_mib']:.0f} MiB ({share:.1%})"
            reached = share <= 0.5
        checks.append(dict(target=f"Peak memory of a GMM fit on the 12 MP photo, emseg on {data}",
                           goal="≤ half of scikit-learn's", measured=measured, reached=reached))

    startup = results.get("startup", {})
    warm = startup.get("warm")
    cold = startup.get("cold")
    checks.append(dict(
        target="numba compile time, first run (empty cache)", goal="reported",
        measured=None if cold is None else f"{seconds_text(cold['first_call_seconds'])} first calls, "
                                           f"{seconds_text(cold['process_seconds'])} whole process",
        reached=None if cold is None else True))
    command = startup.get("command")
    checks.append(dict(
        target="a second process, with the on-disk cache: the `emseg` command, start to exit, segmenting a "
               "64 × 64 image", goal="< 2 s",
        measured=None if command is None else timing_text(command["seconds"]),
        reached=None if command is None else command["seconds"]["median"] < 2.0))
    checks.append(dict(
        target="a second process, with the on-disk cache: a Python program importing em and kmeans, ready "
               "(imports + first fits)", goal="< 2 s",
        measured=None if warm is None else f"{seconds_text(warm['ready_seconds'])}: imports "
                                           f"{seconds_text(warm['import_seconds'])}, first calls "
                                           f"{seconds_text(warm['first_call_seconds'])} "
                                           f"({seconds_text(warm['process_seconds'])} with interpreter start and exit)",
        reached=None if warm is None else warm["ready_seconds"] < 2.0))
    return checks


# ----------------------------------------------------------------- markdown

def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_text(machine, cases_pressure=None):
    blas = "; ".join(f"{pool['internal_api']}{' ' + pool['version'] if pool.get('version') else ''} ({pool['num_threads']} threads"
                     + (f", {pool['architecture']} kernels" if pool.get("architecture") else "") + ")"
                     for pool in machine["threadpools"])
    versions = ", ".join(f"{name} {version}" for name, version in machine["versions"].items())
    env = ", ".join(f"{k}={v}" for k, v in machine["environment"].items()) or "none set"
    return "\n".join([
        f"- CPU: {machine['cpu']}, {machine['logical_cpus']} logical CPUs ({', '.join(machine['simd'])}), "
        f"{machine['memory_gib']} GiB; {machine['platform']}, Python {machine['python']}",
        f"- Threads: numba {machine['numba_threads']} ({machine['numba_threading_layer']} layer); "
        f"thread pools (threadpoolctl): {blas}",
        f"- Versions: {versions}",
        f"- Thread and BLAS variables: {env}",
        f"- Load while measuring: load average {', '.join(f'{x:.2f}' for x in machine['load_average'])}; "
        f"CPU pressure (share of time some task waited for a CPU, last 10 s) "
        f"{_pressure(machine.get('cpu_pressure'))} at the start, {_pressure(machine.get('cpu_pressure_end'))} at the end"
        + (f", {cases_pressure} right after the timed cases (last column of the timings)" if cases_pressure else ""),
    ])


def _pressure(value):
    return "n/a" if value is None else f"{value:.0%}"


def pressure_range(rows):
    """'median X%, max Y%' of the CPU pressure noted after each case, or None."""
    values = sorted(row["cpu_pressure"] for row in rows if row.get("cpu_pressure") is not None)
    if not values:
        return None
    return f"median {_pressure(values[len(values) // 2])}, max {_pressure(values[-1])}"


def cases_table(rows):
    header = ["case", "image", "emseg on", "emseg time: median [min – max] ×n", "scikit-learn on",
              "scikit-learn time", "speed-up", "quality", "emseg", "scikit-learn", "ARI", "notes", "CPU pressure"]
    body = []
    for row in rows:
        ours, theirs = row["emseg"], row["sklearn"]
        body.append([
            row["case"], f"{row['image']} ({row['n_pixels']:,} px)", f"{ours['data']} ({ours['n_samples']:,})",
            timing_text(ours["seconds"]), f"{theirs['data']} ({theirs['n_samples']:,})", timing_text(theirs["seconds"]),
            f"**{row['speedup']:.1f}×**", row["metric"] or "-", value_text(ours.get("value")),
            value_text(theirs.get("value")), "-" if row["ari"] is None else f"{row['ari']:.4f}", row["note"],
            _pressure(row.get("cpu_pressure")),
        ])
    return _table(header, body)


def memory_table(records):
    header = ["model", "image", "library", "fitted on", "peak above baseline", "baseline", "fit time", "iterations",
              "quality"]
    body = [[r["model"], r["image_name"], r["library"], r["data"], f"**{r['peak_mib']:.0f} MiB**",
             f"{r['baseline_mib']:.0f} MiB", seconds_text(r["seconds"]), r["n_iter"], value_text(r["objective"])]
            for r in records]
    return _table(header, body)


def scaling_table(records, x_key, x_label):
    series = list(records[0]["series"]) if records else []
    header = ["model", x_label, "distinct colours"] + series
    body = [[r["model"], f"{r[x_key]:,}", f"{r['n_colors']:,}"]
            + [seconds_text(r["series"][s]["seconds"]["median"]) for s in series] for r in records]
    return _table(header, body)


def slopes_text(slopes, x_label):
    parts = []
    for model, by_series in slopes.items():
        fitted = ", ".join(f"{series} {value:.2f}" for series, value in by_series.items() if value is not None)
        parts.append(f"{model}: {fitted}")
    return (f"Fitted exponent b of time ∝ {x_label}^b, on the medians (1 is linear growth): "
            + "; ".join(parts) + ".")


def markdown(results, notes=None):
    """The whole RESULTS.md text; ``notes`` is the relative path of a hand-written analysis to link, if any."""
    sections = [
        "# Benchmarks: emseg against scikit-learn",
        f"Measured {results['date']} with `{results['command']}` (total {results['total_seconds'] / 60:.1f} min), "
        f"emseg at commit {results['git']['commit']}"
        + (f" with uncommitted changes in {', '.join(results['git']['uncommitted'])}" if results["git"]["uncommitted"] else "")
        + ". Every ratio compares two runs made side by side in the same process, interleaved round by round; "
        "the speed-up is scikit-learn's median time over emseg's.",
        *[f"Re-measured on {u['date']} with `{u['command']}` ({', '.join(u['cases'])}; "
          f"{u['total_seconds'] / 60:.1f} min), emseg at commit {u['git']['commit']}; CPU pressure "
          f"{_pressure(u['machine'].get('cpu_pressure'))} at its start, "
          f"{_pressure(u['machine'].get('cpu_pressure_end'))} at its end."
          for u in results.get("updates", [])],
        *(["Each section comes from the last run that measured it."] if results.get("updates") else []),
        "## Machine\n\n" + machine_text(results["machine"], pressure_range(results.get("cases", []))),
        f"Warm-up before timing (first calls in this process, kernels loaded from numba's on-disk cache): "
        f"{seconds_text(results['warmup_seconds'])}.",
    ]
    if notes:
        sections.append(f"Why the missed targets are missed, with profiles, and what would reach them: "
                        f"[{notes}]({notes}).")
    checks = targets(results)
    if checks:
        mark = {True: "yes", False: "**no**", None: "not measured"}
        sections.append("## Targets (from the issue)\n\n" + _table(
            ["target", "goal", "measured", "reached"],
            [[c["target"], c["goal"], c["measured"] or "-", mark[c["reached"]]] for c in checks]))
    if results.get("cases"):
        sections.append("## Timings\n\n" + cases_table(results["cases"]))
    if results.get("memory"):
        sections.append("## Peak memory of one fit\n\nEach fit runs in its own process (`benchmarks/memory.py`): "
                        "load the image, warm up, note the resident memory (baseline), then build the input from "
                        "the pixels and fit with default parameters. The peak is the process's own high-water mark "
                        "(see memory.py for why not the raw `ru_maxrss`).\n\n" + memory_table(results["memory"]))
    startup = results.get("startup")
    if startup:
        rows = [[name, seconds_text(s["ready_seconds"]), seconds_text(s["import_seconds"]),
                 seconds_text(s["first_call_seconds"]), seconds_text(s["second_call_seconds"]),
                 seconds_text(s["process_seconds"])]
                for name, s in startup.items() if name in ("cold", "warm")]
        sections.append("## Start-up and compilation\n\n`benchmarks/startup.py` in a fresh process: import emseg, then "
                        "fit a GaussianMixture and a KMeans (and predict, score) on 5,000 pixels, twice. "
                        "'cold' starts with an empty `NUMBA_CACHE_DIR`, so numba compiles every kernel; 'warm' "
                        "runs again with the cache the cold run wrote.\n\n" + _table(
                            ["numba cache", "ready (imports + first calls)", "imports", "first calls", "second calls",
                             "whole process, with interpreter start and exit"], rows))
        if "command" in startup:
            sections.append(f"The `emseg` command, each run a fresh process from start to exit, with the warm "
                            f"cache: `{startup['command']['command']}`: {timing_text(startup['command']['seconds'])}.")
    scaling = results.get("scaling")
    if scaling:
        text = ["## Scaling", f"![time per iteration against pixels and k]({scaling['plot']})" if scaling.get("plot")
                else "(no plot: matplotlib is missing)"]
        if scaling["pixels"]:
            text += ["Against the number of pixels (k = 10, the 12 MP mosaic resized; the distinct-colour series is "
                     "fitted against the number of colours, the samples it actually fits). Medians:",
                     scaling_table(scaling["pixels"], "n_pixels", "pixels"), slopes_text(scaling["pixel_slopes"], "pixels")]
        if scaling["k"]:
            text += [f"Against k ({scaling['k_image']}). Medians:", scaling_table(scaling["k"], "k", "k"),
                     slopes_text(scaling["k_slopes"], "k")]
        sections.append("\n\n".join(text))
    sections.append("## How it was measured\n\n" + "\n".join(f"- {line}" for line in results["method"]))
    return "\n\n".join(sections) + "\n"


def write(results, folder, markdown_path=None):
    """Write results.json and RESULTS.md (to ``markdown_path``, default inside ``folder``); return the markdown."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    markdown_path = Path(markdown_path or folder / "RESULTS.md")
    notes = "NOTES.md" if (markdown_path.parent / "NOTES.md").exists() else None
    text = markdown(results, notes)
    markdown_path.write_text(text)
    return text
