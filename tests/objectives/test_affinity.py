"""The compiled Affinity Propagation against scikit-learn's, its second implementation: the same
labels, exemplars and iteration count (and the same warnings) on random similarity matrices, on
degenerate ones and on the rows of trained models; and the same messages, bit for bit, as
scikit-learn's NumPy loop after a given number of iterations."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.cluster import AffinityPropagation
from sklearn.exceptions import ConvergenceWarning

import mdmtn.objectives.affinity as affinity
from mdmtn.objectives.affinity import COMPILED, affinity_propagation
from mdmtn.objectives.growl import cluster_rows, similarity_matrix, weight_rows

RESULTS = Path(__file__).resolve().parents[2] / "results" / "paper"


def _sklearn(S, preference, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ap = AffinityPropagation(affinity="precomputed", preference=preference, random_state=0, **kw).fit(S)
    return (ap.cluster_centers_indices_, ap.labels_, ap.n_iter_), [str(c.message) for c in caught]


def _ours(S, preference, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = affinity_propagation(S, preference, random_state=0, **kw)
    return out, [str(c.message) for c in caught]


def _same(S, preference, **kw):
    (c1, l1, n1), w1 = _sklearn(S, preference, **kw)
    (c2, l2, n2), w2 = _ours(S, preference, **kw)
    assert np.array_equal(np.asarray(c1), c2) and np.array_equal(l1, l2) and n1 == n2, (n1, n2)
    assert w1 == w2
    return l2


def _rows_similarity(n, d, seed, duplicates=0):
    g = torch.Generator().manual_seed(seed)
    rows = torch.randn(n, d, generator=g, dtype=torch.float64)
    if duplicates:
        rows[:duplicates] = rows[0]
        rows[duplicates : 2 * duplicates] = 0.0
    return similarity_matrix(rows)


@pytest.mark.parametrize("n, d", [(2, 3), (3, 4), (7, 2), (40, 8), (150, 16), (333, 32)])
@pytest.mark.parametrize("preference", [0.7, 0.8, -1.0])
def test_the_same_clusters_as_scikit_learn(n, d, preference):
    _same(_rows_similarity(n, d, seed=n), preference)


@pytest.mark.parametrize("damping, max_iter, convergence_iter", [(0.9, 200, 15), (0.5, 20, 15), (0.7, 300, 5)])
def test_the_same_with_other_settings_converged_or_not(damping, max_iter, convergence_iter):
    kw = dict(damping=damping, max_iter=max_iter, convergence_iter=convergence_iter)
    _same(_rows_similarity(120, 6, seed=1), 0.5, **kw)


def _sklearn_messages(S, damping, iterations):
    """scikit-learn's message updates (its loop body, without the convergence test): (A, R)."""
    n = S.shape[0]
    A, R, tmp, ind = np.zeros((n, n)), np.zeros((n, n)), np.zeros((n, n)), np.arange(n)
    for _ in range(iterations):
        np.add(A, S, tmp)
        I = np.argmax(tmp, axis=1)
        Y = tmp[ind, I]
        tmp[ind, I] = -np.inf
        Y2 = np.max(tmp, axis=1)
        np.subtract(S, Y[:, None], tmp)
        tmp[ind, I] = S[ind, I] - Y2
        tmp *= 1 - damping
        R *= damping
        R += tmp
        np.maximum(R, 0, out=tmp)
        tmp.flat[:: n + 1] = R.flat[:: n + 1]
        tmp -= np.sum(tmp, axis=0)
        dA = np.diag(tmp).copy()
        tmp.clip(0, np.inf, tmp)
        tmp.flat[:: n + 1] = dA
        tmp *= 1 - damping
        A *= damping
        A -= tmp
    return A, R


@pytest.mark.parametrize("n, iterations, damping", [(2, 1, 0.5), (9, 3, 0.5), (64, 40, 0.5), (257, 25, 0.9)])
def test_the_messages_are_scikit_learns_bit_for_bit(n, iterations, damping):
    S = _rows_similarity(n, 5, seed=n, duplicates=n // 8)
    S.flat[:: n + 1] = 0.7
    S += (np.finfo(float).eps * S + np.finfo(float).tiny * 100) * np.random.RandomState(0).standard_normal((n, n))
    A, R = np.zeros((n, n)), np.zeros((n, n))
    e = np.zeros((n, iterations + 1))  # a convergence window longer than the run: no early stop
    affinity._iterate(S, A, R, damping, 1 - damping, iterations, iterations + 1, e)
    A_ref, R_ref = _sklearn_messages(S, damping, iterations)
    assert np.array_equal(A, A_ref) and np.array_equal(R, R_ref)  # equal values (±0 compare equal)
    if n <= 9:  # the uncompiled reference is the same function, read as Python
        A_py, R_py = np.zeros((n, n)), np.zeros((n, n))
        affinity._iterate_py(S, A_py, R_py, damping, 1 - damping, iterations, iterations + 1, e.copy())
        assert np.array_equal(A_py, A) and np.array_equal(R_py, R)


def test_the_compiled_loop_runs_here():
    assert affinity.COMPILED  # numba is a requirement; without it scikit-learn would run instead


def test_degenerate_inputs():
    _same(np.ones((1, 1)), 0.5)  # one point
    _same(np.full((4, 4), 0.3), 0.9)  # all similarities equal: every point its own exemplar
    _same(np.full((4, 4), 0.3), 0.1)  # ... or one exemplar
    _same(_rows_similarity(30, 4, seed=5, duplicates=12), 0.8)  # identical and zero rows
    S = np.zeros((6, 6))  # no exemplar ever emerges: labels -1 and scikit-learn's warning
    (c, labels, _), caught = _ours(S - np.eye(6), -10.0, max_iter=16)
    assert _sklearn(S - np.eye(6), -10.0, max_iter=16)[0][1].tolist() == labels.tolist()


def test_bad_input_is_one_line():
    with pytest.raises(ValueError, match="square"):
        affinity_propagation(np.zeros((2, 3)), 0.5)
    with pytest.raises(ValueError, match="damping"):
        affinity_propagation(np.zeros((2, 2)), 0.5, damping=1.0)


def _trained_layers():
    """The shared fully connected layer of one committed sparse paper-preset model per dataset."""
    out = []
    for dataset in ("multimnist", "cifar10mnist"):
        for rec_path in sorted(RESULTS.glob("*.json")):
            rec = json.loads(rec_path.read_text())
            c = rec.get("config", {})
            ckpt = rec_path.with_suffix(".pt")
            if c.get("dataset") == dataset and c.get("method") == "wc_al" and c.get("k", [0])[0] > 0 and ckpt.exists():
                out.append(ckpt)
                break
    return out


@pytest.mark.parametrize("ckpt", _trained_layers(), ids=lambda p: p.stem)
def test_the_same_clusters_on_a_trained_models_rows(ckpt):
    from mdmtn.records.checkpoint import load_checkpoint

    model, cfg, _ = load_checkpoint(ckpt)
    w = dict(model.growl_weights())["shared.fc.weight"]
    rows = weight_rows(w.detach(), cfg.switches.conv_rows)
    nonzero = rows[~(rows == 0).all(dim=1)]
    labels = _same(similarity_matrix(nonzero), cfg.growl.ap_preference)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert np.array_equal(cluster_rows(nonzero, cfg.growl.ap_preference), labels)


def test_the_degenerate_case_test_agrees_with_scikit_learns():
    from sklearn.cluster._affinity_propagation import _equal_similarities_and_preferences as theirs

    rng = np.random.default_rng(0)
    cases = [np.full((4, 4), 0.3), np.full((2, 2), 0.1), rng.random((5, 5)), np.full((3, 3), np.nan)]
    one_off = np.full((6, 6), 0.2)
    one_off[5, 2] = 0.3  # equal everywhere but in the last row
    own_diagonal = np.full((6, 6), 0.2)
    np.fill_diagonal(own_diagonal, 9.0)  # the diagonal does not count
    for S in cases + [one_off, own_diagonal]:
        for pref in (np.asarray(0.5), np.array([0.5, 0.5]), np.array([0.5, 0.6])):
            assert affinity._equal_similarities_and_preferences(S, pref) == bool(theirs(S, pref))


@pytest.mark.skipif(not COMPILED, reason="numba not installed")
@pytest.mark.parametrize("damage", ["index", "data"])
def test_a_damaged_numba_cache_is_rebuilt_not_a_traceback(tmp_path, damage):
    """Real processes share a numba cache folder; one file of it is damaged (a killed writer, a bad
    disk) and the next process warns, compiles afresh and gives the same clustering."""
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from mdmtn.objectives.affinity import affinity_propagation\n"
        "S = -np.random.default_rng(0).random((30, 30))\n"
        "print(affinity_propagation(S, -1.0)[0].tolist())\n"
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    files = sorted(tmp_path.rglob("*.nbi" if damage == "index" else "*.nbc"))
    assert files
    for f in files:
        f.write_bytes(os.urandom(64))
    again = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr
    assert "is damaged" in again.stderr and again.stdout == first.stdout
