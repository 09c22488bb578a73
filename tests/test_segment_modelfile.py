"""model.json: written and read back exactly, and every breach of its schema refused with one line."""

import json

import numpy as np
import pytest
from sklearn.datasets import load_sample_image
from sklearn.exceptions import ConvergenceWarning

from conftest import run_cli
from segment import image, modelfile, models


@pytest.fixture(scope="module")
def fitted():
    """A mixture and a k-means fitted on flower.jpg's distinct colours, each with its palette."""
    picture = image.thumbnail(image.Picture(load_sample_image("flower.jpg")), 160)
    result = {}
    for method, options in (("gmm", dict(covariance_type="full", max_iter=20)), ("kmeans", dict(max_iter=20))):
        model = models.make_model(method, 5, random_state=0, **options)
        image.fit_color_labels(model, picture)
        result[method] = model, image.model_colors(model)
    return result


@pytest.mark.parametrize("method", ["gmm", "kmeans"])
def test_a_model_read_back_is_the_same_model(tmp_path, fitted, method):
    model, palette = fitted[method]
    modelfile.save(tmp_path / "model.json", model, palette, "lab")
    loaded, loaded_palette, space = modelfile.read(tmp_path / "model.json")
    assert space == "lab" and np.array_equal(loaded_palette, palette)
    for name, value in models.fitted_parameters(model).items():  # every float written with all its digits
        assert np.array_equal(models.fitted_parameters(loaded)[name], value)


@pytest.mark.parametrize("covariance_type", ["spherical", "diag", "tied", "full"])
def test_the_weights_of_real_fits_pass_the_derived_tolerance(covariance_type):
    """Mixtures of every covariance type fitted on china.jpg: Σπ − 1 within (2k + 1) u, and a bound that can fail."""
    colors = image.thumbnail(image.Picture(load_sample_image("china.jpg")), 160).distinct
    for k in (3, 16):
        model = models.make_model("gmm", k, covariance_type=covariance_type, random_state=0, max_iter=5)
        with pytest.warns(ConvergenceWarning):  # 5 iterations: the weights of a fit under way, summed all the same
            weights = model.fit(colors[0], sample_weight=colors[1]).weights_
        assert abs(weights.sum() - 1.0) <= modelfile.weights_sum_tolerance(k)
    assert abs(np.full(3, 1 / 3 + 1e-12).sum() - 1.0) > modelfile.weights_sum_tolerance(3)  # an edit shows


def _edited(document, path, value):
    """A deep copy of ``document`` with the entry at ``path`` (keys and indices) set to ``value``, or removed."""
    document = json.loads(json.dumps(document))
    *parents, last = path
    target = document
    for key in parents:
        target = target[key]
    if value is _REMOVE:
        del target[last]
    else:
        target[last] = value
    return document


_REMOVE = object()
TAMPERED = {
    "future-format": (("format",), 2, "format 2, written by a newer emseg"),
    "format-not-a-number": (("format",), "one", "not a format number"),
    "method": (("method",), "pickle", "method 'pickle'"),
    "space": (("space",), "cmyk", "space 'cmyk'"),
    "k-zero": (("k",), 0, "k 0"),
    "k-mismatch": (("k",), 6, "palette has shape (5, 3), expected (6, 3)"),
    "palette-range": (("palette", 0, 0), 256, "0..255"),
    "palette-fraction": (("palette", 0, 0), 1.5, "0..255"),
    "no-parameters": (("parameters",), _REMOVE, "parameters is missing"),
    "no-weights": (("parameters", "weights"), _REMOVE, "weights is missing"),
    "weights-string": (("parameters", "weights"), "abc", "weights is not an array"),
    "means-ragged": (("parameters", "means", 0), [1.0], "means is not an array"),
    "weights-negative": (("parameters", "weights", 0), -0.1, "negative weight"),
    "weights-sum": (("parameters", "weights", 0), 0.9, "not to 1 within"),
    "weights-huge-int": (("parameters", "weights", 0), 10 ** 400, "weights is not an array"),
    "means-null": (("parameters", "means", 1, 2), None, "not a finite number"),
    "means-shape": (("parameters", "means"), [[1.0, 2.0]], "means has shape (1, 2)"),
    "covariance-type": (("parameters", "covariance_type"), "banded", "covariance_type 'banded'"),
    "not-definite": (("parameters", "covariances", 0), [[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
                     "not positive definite"),
    "covariance-shape": (("parameters", "covariances"), [1.0] * 5, "covariances has shape (5,)"),
}


@pytest.mark.parametrize("case", TAMPERED, ids=list(TAMPERED))
def test_a_tampered_model_file_is_one_clear_line(capsys, tmp_path, fitted, case):
    where, value, match = TAMPERED[case]
    model, palette = fitted["gmm"]
    good = modelfile.document(model, palette, "test", "rgb")
    modelfile.restore(good)  # the untouched document passes, so each failure below is the edit's
    path = tmp_path / "model.json"
    path.write_text(json.dumps(_edited(good, where, value)))
    with pytest.raises(modelfile.ModelFileError, match="model.json") as error:
        modelfile.read(path)
    assert match in str(error.value)
    code, out, err = run_cli(capsys, "segment", _photo(tmp_path), "--model", path, "-o", tmp_path / "out.png")
    assert code == 1 and out == "" and err.count("\n") == 1 and err.startswith("emseg: error: ")
    assert not (tmp_path / "out.png").exists()


def _photo(tmp_path):
    path = tmp_path / "photo.png"
    if not path.exists():
        image.save(path, load_sample_image("flower.jpg")[:32, :32])
    return path


@pytest.mark.parametrize("text, match", [
    ('{"method": "gmm", "k": 2, "palette": [[0, 0, 0], [1, 1, 1]], "par', "not valid JSON"),
    ("[" * 100_000 + "]" * 100_000, "not valid JSON"),
    ('{"method": "kmeans", "k": 1, "palette": [[0, 0, 0]], "parameters": {"cluster_centers": [[NaN, 0, 0]]}}',
     "holds NaN"),
    ('"__import__(\'os\').system(\'touch pwned\')"', "no JSON object"),
    ("\udcff", "cannot be read"),
], ids=["truncated", "nested", "nan", "code", "not-utf8"])
def test_a_broken_model_file_never_runs_or_raises_anything_else(tmp_path, monkeypatch, text, match):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "model.json"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(modelfile.ModelFileError, match=match):
        modelfile.read(path)
    assert not (tmp_path / "pwned").exists()


def test_a_missing_model_file(tmp_path):
    with pytest.raises(modelfile.ModelFileError, match="no such model file"):
        modelfile.read(tmp_path / "nowhere.json")
