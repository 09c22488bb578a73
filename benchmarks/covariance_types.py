"""The four covariance types side by side with scikit-learn: speed, peak memory, and whether full pays on photos.

Run from the repository root::

    python benchmarks/covariance_types.py                 # china.jpg and the 12 MP mosaic (about 60 min under load)
    python benchmarks/covariance_types.py --parts large   # only the mosaic's rows, added to the JSON
    python benchmarks/covariance_types.py --quick         # a tiny image, to check the script works

For each covariance type, on each image:

- ``iter``: seconds per EM iteration from the same start (emseg's k-means
  start of that type), tol=0, emseg on all pixels and on distinct colours,
  scikit-learn on all pixels; rounds interleaved, medians.
- ``fit``: a default fit (k=10, k-means init, tol=1e-3, max_iter=100,
  random_state=0), emseg on distinct colours (finding them included) and on all
  pixels, scikit-learn on all pixels. On the 12 MP mosaic, scikit-learn's fits
  (several minutes per iteration for 'full' under load) are not run: its time
  is estimated from its measured iteration (`estimated_fit_speedups`).
- ``memory``: peak resident memory of emseg's default fit on the 12 MP mosaic's
  distinct colours and on all its pixels, each in a fresh process (`memory.py`).
- ``held-out``: on china.jpg and flower.jpg, half the pixels (drawn with a
  fixed seed) train a mixture of each type with about the same number of free
  parameters; the mean log-likelihood per pixel of the other half says which
  type models photo colours best for its size.

Kernels are compiled (or loaded from numba's cache) on a small crop first; that
time is reported apart. Results go to ``--out`` as JSON after every case, so a
cut-off run keeps what it measured, and the markdown table is printed at the end.
"""

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cases  # noqa: E402
import photos  # noqa: E402
from run import run_child  # noqa: E402
from timing import cpu_pressure, interleave, summary, timed  # noqa: E402

from em import GaussianMixture  # noqa: E402
from em.reference import COVARIANCE_TYPES, n_parameters  # noqa: E402
from segment import image  # noqa: E402

K = 10
SEED = 0
PARAMETER_BUDGETS = (69, 139)  # diag with k=10 and k=20 (RGB): 10·7 - 1 and 20·7 - 1


def warm_up(photo):
    """Load or compile every type's kernels on a crop, and scikit-learn's code paths; returns seconds."""
    crop = cases.Photo("crop", np.ascontiguousarray(photo.rgb[:40, :40]))
    start = time.perf_counter()
    with cases.quiet():
        for covariance_type in COVARIANCE_TYPES:
            GaussianMixture(3, covariance_type=covariance_type, random_state=SEED).fit(crop.X).predict(crop.X)
            GaussianMixture(3, covariance_type=covariance_type, random_state=SEED).fit(
                crop.colors, sample_weight=crop.counts)
            SkGaussianMixture(3, covariance_type=covariance_type, random_state=SEED).fit(crop.X)
    return time.perf_counter() - start


def iteration_row(photo, covariance_type, settings):
    """Seconds per EM iteration of both libraries from the same start."""
    init = cases.initial_mixture(photo, settings.k, covariance_type)
    seconds, models = interleave(cases.gmm_iteration_runs(photo, settings, init), settings.repeats)
    theirs = models["sklearn", cases.ALL][-1]
    return dict(case="iter", covariance_type=covariance_type, image=photo.name, n_pixels=photo.n_pixels,
                n_colors=len(photo.colors),
                emseg_all=summary(seconds["emseg", cases.ALL]), emseg_distinct=summary(seconds["emseg", cases.DISTINCT]),
                sklearn_all=summary(seconds["sklearn", cases.ALL]),
                lower_bound=dict(emseg=float(models["emseg", cases.ALL][-1].lower_bound_),
                                 sklearn=float(theirs.lower_bound_)),
                pressure=cpu_pressure())


def fit_row(photo, covariance_type, settings, emseg_all=True, sklearn_fit=True):
    """Default fits: emseg on distinct colours (finding them included) and on all pixels, scikit-learn on all.

    ``emseg_all=False`` and ``sklearn_fit=False`` leave those out: on 12 MP under load
    they take many minutes each (see `estimated_fit_speedups`).
    """
    def ours(which):
        def fit(r):
            model = GaussianMixture(settings.k, covariance_type=covariance_type, random_state=SEED)
            if which == cases.ALL:
                return timed(lambda: model.fit(photo.X))

            def pipeline():
                colors, counts, _ = image.distinct_colors(photo.rgb)
                return model.fit(colors, sample_weight=counts)
            return timed(pipeline)
        return fit

    def theirs(r):
        return timed(lambda: SkGaussianMixture(settings.k, covariance_type=covariance_type,
                                               random_state=SEED).fit(photo.X))

    runs = {("emseg", cases.DISTINCT): (ours(cases.DISTINCT), settings.repeats),
            ("emseg", cases.ALL): (ours(cases.ALL), settings.repeats if emseg_all else 0),
            ("sklearn", cases.ALL): (theirs, settings.sklearn_rounds(photo.n_pixels) if sklearn_fit else 0)}
    with cases.quiet():
        seconds, models = interleave(runs, settings.repeats)
    fitted = {key: models[key][-1] for key in runs if models[key]}
    return dict(case="fit", covariance_type=covariance_type, image=photo.name, n_pixels=photo.n_pixels,
                emseg_distinct=summary(seconds["emseg", cases.DISTINCT]),
                emseg_all=summary(seconds["emseg", cases.ALL]) if emseg_all else None,
                sklearn_all=summary(seconds["sklearn", cases.ALL]) if sklearn_fit else None,
                lower_bound={f"{lib} {which}": float(model.lower_bound_) for (lib, which), model in fitted.items()},
                n_iter={f"{lib} {which}": int(model.n_iter_) for (lib, which), model in fitted.items()},
                pressure=cpu_pressure())


def largest_k(covariance_type, budget, n_features=3):
    """The largest k whose mixture of this type has at most ``budget`` free parameters."""
    k = 1
    while n_parameters(k + 1, n_features, covariance_type) <= budget:
        k += 1
    return k


def held_out_rows(photo, budgets):
    """Mean log-likelihood per held-out pixel of each type, at (about) equal parameter counts."""
    rng = np.random.default_rng(SEED)
    train = rng.random(photo.n_pixels) < 0.5
    colors, counts, _ = image.distinct_colors(photo.rgb.reshape(-1, 1, 3)[train])
    rows = []
    for budget in budgets:
        for covariance_type in COVARIANCE_TYPES:
            k = largest_k(covariance_type, budget)
            with cases.quiet():
                model = GaussianMixture(k, covariance_type=covariance_type, random_state=SEED).fit(
                    colors, sample_weight=counts)
            rows.append(dict(case="held-out", covariance_type=covariance_type, image=photo.name, budget=budget, k=k,
                             n_parameters=int(model._n_parameters()),
                             train=float(model.lower_bound_), test=float(model.score(photo.X[~train]))))
    return rows


def memory_rows(path, name, k):
    """Peak memory of emseg's default fit of each type, on distinct colours and on all pixels, in fresh processes."""
    rows = []
    for covariance_type in COVARIANCE_TYPES:
        for data in ("distinct", "all"):
            record, _ = run_child("memory.py", "gmm", "emseg", data, path, "-k", k, "--covariance", covariance_type)
            rows.append(dict(record, case="memory", image=name))
    return rows


def estimated_fit_speedups(rows):
    """Where scikit-learn's default fit was not run: its time estimated from below, and the speed-up.

    scikit-learn's fit takes at least its per-iteration time (measured) times
    the iterations of emseg's default fit on all pixels (`memory.py`'s run;
    same k-means++ seed, though not the same k-means start), plus its k-means
    start, left out. So the estimate is a lower bound only as far as the
    iteration counts agree; on china.jpg they are compared in the fit table.
    """
    by_key = {(r["case"], r["image"], r["covariance_type"], r.get("data")): r for r in rows}
    estimates = []
    for r in (r for r in rows if r["case"] == "fit" and not r["sklearn_all"]):
        iteration = by_key.get(("iter", r["image"], r["covariance_type"], None))
        memory = by_key.get(("memory", r["image"], r["covariance_type"], "all"))
        if iteration and memory:
            sklearn_fit = iteration["sklearn_all"]["median"] * memory["n_iter"]
            estimates.append(dict(image=r["image"], covariance_type=r["covariance_type"],
                                  emseg_distinct=r["emseg_distinct"], sklearn_iteration=iteration["sklearn_all"],
                                  n_iter=memory["n_iter"], sklearn_fit=sklearn_fit,
                                  speedup=sklearn_fit / r["emseg_distinct"]["median"]))
    return estimates


def markdown(results):
    """The tables of RESULTS.md's covariance-type section."""
    def ms(s):
        return f"{s['median'] * 1e3:.3g} ms" if s["median"] < 1 else f"{s['median']:.3g} s"

    lines = ["| image | type | emseg all pixels | emseg distinct | scikit-learn all pixels | speed-up all | "
             "speed-up distinct | lower bound emseg / scikit-learn |", "|---|---|---|---|---|---|---|---|"]
    for r in (r for r in results["rows"] if r["case"] == "iter"):
        lines.append(f"| {r['image']} | {r['covariance_type']} | {ms(r['emseg_all'])} ×{r['emseg_all']['n']} | "
                     f"{ms(r['emseg_distinct'])} | {ms(r['sklearn_all'])} ×{r['sklearn_all']['n']} | "
                     f"**{r['sklearn_all']['median'] / r['emseg_all']['median']:.1f}×** | "
                     f"{r['sklearn_all']['median'] / r['emseg_distinct']['median']:.1f}× | "
                     f"{r['lower_bound']['emseg']:.6f} / {r['lower_bound']['sklearn']:.6f} |")
    lines += ["", "| image | type | emseg distinct | emseg all pixels | scikit-learn all pixels | speed-up distinct | "
              "speed-up all | lower bound (distinct / all / scikit-learn) | iterations |", "|---|---|---|---|---|---|---|---|---|"]
    for r in (r for r in results["rows"] if r["case"] == "fit" and r["sklearn_all"]):
        bounds = " / ".join(f"{v:.4f}" for v in r["lower_bound"].values())
        iters = " / ".join(str(v) for v in r["n_iter"].values())
        lines.append(f"| {r['image']} | {r['covariance_type']} | {ms(r['emseg_distinct'])} ×{r['emseg_distinct']['n']} | "
                     f"{ms(r['emseg_all']) if r['emseg_all'] else '-'} | {ms(r['sklearn_all'])} ×{r['sklearn_all']['n']} | "
                     f"**{r['sklearn_all']['median'] / r['emseg_distinct']['median']:.1f}×** | "
                     f"{r['sklearn_all']['median'] / r['emseg_all']['median'] if r['emseg_all'] else float('nan'):.1f}× | "
                     f"{bounds} | {iters} |")
    estimates = estimated_fit_speedups(results["rows"])
    if estimates:
        lines += ["", "| image | type | emseg default fit, distinct colours | scikit-learn per iteration, all pixels | "
                  "iterations (emseg, all pixels) | scikit-learn fit, estimated | speed-up, estimated |",
                  "|---|---|---|---|---|---|---|"]
        for e in estimates:
            lines.append(f"| {e['image']} | {e['covariance_type']} | {ms(e['emseg_distinct'])} ×{e['emseg_distinct']['n']} | "
                         f"{ms(e['sklearn_iteration'])} ×{e['sklearn_iteration']['n']} | {e['n_iter']} | "
                         f"≥ {e['sklearn_fit']:.0f} s | **≥ {e['speedup']:.0f}×** |")
    lines += ["", "| image | type | data | peak above baseline | fit seconds |", "|---|---|---|---|---|"]
    for r in (r for r in results["rows"] if r["case"] == "memory"):
        lines.append(f"| {r['image']} | {r['covariance_type']} | {r['data']} | {r['peak_mib']:.0f} MiB | {r['seconds']:.2f} |")
    lines += ["", "| image | parameters (budget) | type | k | parameters | train log-lik / pixel | held-out log-lik / pixel |",
              "|---|---|---|---|---|---|---|"]
    for r in (r for r in results["rows"] if r["case"] == "held-out"):
        lines.append(f"| {r['image']} | {r['budget']} | {r['covariance_type']} | {r['k']} | {r['n_parameters']} | "
                     f"{r['train']:.4f} | **{r['test']:.4f}** |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny image, two rounds: checks the script works")
    parser.add_argument("--parts", default="held-out,small,memory,large",
                        help="comma-separated: held-out, small (china.jpg), memory and large (the 12 MP mosaic)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "covariance_types.json",
                        help="the JSON results; rows already there are kept and the new ones added")
    parser.add_argument("--folder", type=Path, default=HERE / "results", help="where the mosaic JPEG is written")
    args = parser.parse_args(argv)
    parts = args.parts.split(",")
    small, large = ("tiny", "tiny") if args.quick else ("china", "mosaic12")
    settings = cases.Settings(repeats=2, n_iter=2) if args.quick else cases.Settings(repeats=3, n_iter=5)
    # on 12 MP scikit-learn's iterations take minutes under load: one interval, one round
    large_settings = cases.Settings(repeats=settings.repeats, n_iter=1 if not args.quick else 2)
    paths = photos.benchmark_photos(args.folder, sorted({small, large} | ({"flower"} if not args.quick else set())))
    loaded = {name: cases.Photo.load(name, path) for name, path in paths.items()}
    results = json.loads(args.out.read_text()) if args.out.exists() and not args.quick else dict(rows=[])
    results.setdefault("runs", []).append(dict(parts=parts, settings=vars(settings), warm_up_seconds=warm_up(loaded[small])))

    def keep(rows):
        results["rows"].extend(rows)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))
        print(json.dumps(rows[-1])[:300], flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if "held-out" in parts:
            for name in ("china", "flower") if not args.quick else [small]:
                keep(held_out_rows(loaded[name], PARAMETER_BUDGETS[:1] if args.quick else PARAMETER_BUDGETS))
        if "small" in parts:
            for covariance_type in COVARIANCE_TYPES:
                keep([iteration_row(loaded[small], covariance_type, settings)])
                keep([fit_row(loaded[small], covariance_type, settings)])
        if "memory" in parts:
            keep(memory_rows(paths[large], large, settings.k))
        if "large" in parts:
            for covariance_type in COVARIANCE_TYPES:
                keep([iteration_row(loaded[large], covariance_type, large_settings)])
                keep([fit_row(loaded[large], covariance_type, settings, emseg_all=False, sklearn_fit=False)])
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
