"""docs/em.md against the code: its Python blocks run, and the functions it names exist."""

import inspect
import re
import warnings
from pathlib import Path

import pytest
from sklearn.exceptions import ConvergenceWarning

import em.estimator
import kmeans.reference
from em import reference

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "em.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```python\n(.*?)^```$", DOC, flags=re.DOTALL | re.MULTILINE)


def test_the_doc_has_a_python_block_for_each_step():
    # setup, model, E-step, M-step, e_step_stats, block sums, Jensen, lower_bound_, k-means start, distinct colours
    assert len(BLOCKS) == 10


def test_every_python_block_runs_in_order():
    namespace = {}
    for number, block in enumerate(BLOCKS, start=1):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)  # the toy fits must converge
            try:
                exec(compile(block, f"docs/em.md, python block {number}", "exec"), namespace)
            except AssertionError:
                pytest.fail(f"docs/em.md python block {number} disagrees with the code:\n{block}")


def test_every_reference_function_is_named_in_the_doc():
    public = [name for name, value in vars(reference).items()
              if inspect.isfunction(value) and value.__module__ == reference.__name__ and not name.startswith("_")]
    assert len(public) == 23  # 10 for the diagonal model, 13 for the other covariance types
    missing = [name for name in public if f"`reference.{name}`" not in DOC]
    assert missing == []


@pytest.mark.parametrize("module, prefix", [
    (reference, "reference."), (kmeans.reference, "kmeans.reference."), (em.estimator, "em.estimator."),
], ids=["em.reference", "kmeans.reference", "em.estimator"])
def test_every_function_the_doc_names_exists(module, prefix):
    named = set(re.findall(rf"`{re.escape(prefix)}(\w+)`", DOC))
    if prefix == "reference.":  # `kmeans.reference.x` also contains `reference.x`
        named -= set(re.findall(r"`kmeans\.reference\.(\w+)`", DOC))
    assert named and all(hasattr(module, name) for name in named), sorted(named)


def test_the_readme_links_the_doc():
    assert "(docs/em.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
