"""mdmtn.data on tiny synthetic raw files (tests/synthetic.py); no real data needed."""

import pickle

import numpy as np
import pytest
import synthetic
import torch
from PIL import Image
from skimage.transform import resize
from torchvision import datasets, transforms

from mdmtn.data import DATASETS, DatasetError, TaskTensors, iterate_batches, load_splits, multimnist
from mdmtn.data import cache as cache_mod

CIFAR_NORM = transforms.Compose(
    [transforms.ToTensor(), transforms.Normalize((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))]
)
MM_NORM = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])


@pytest.fixture
def load(synthetic_data_root, tmp_path):
    """load_splits on the synthetic root with a fresh cache folder per test."""

    def _load(name, **kw):
        kw.setdefault("cache_dir", tmp_path / "cache")
        if name == "cifar10mnist":
            kw.setdefault("allow_unverified_cifar", True)  # synthetic pickles cannot match torchvision's md5s
        return load_splits(name, synthetic_data_root, **kw)

    return _load


def _mnist(root, train):
    ds = datasets.MNIST(str(root), train=train)
    return ds.data.numpy(), ds.targets.numpy()


def _cifar(root, train):
    """Independent reader: the pickles directly, not torchvision."""
    names = synthetic.CIFAR_BATCHES if train else ["test_batch"]
    xs, ys = [], []
    for n in names:
        with open(root / "cifar-10-batches-py" / n, "rb") as f:
            d = pickle.load(f, encoding="bytes")
        xs.append(d[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        ys += d[b"labels"]
    return np.concatenate(xs), np.array(ys)


def _train_order(n, frac, seed=42):
    """Index order of torch's own random_split, the behaviour we must reproduce."""
    tr, va = torch.utils.data.random_split(
        range(n), [int(frac * n), n - int(frac * n)], generator=torch.Generator().manual_seed(seed)
    )
    return list(tr.indices), list(va.indices)


def test_shapes_labels_split_sizes(load):
    assert DATASETS == ("multimnist", "cifar10mnist")
    for name, shape, tasks, sizes in [
        ("multimnist", (1, 28, 28), ("left", "right"), (100, 20, 40)),  # int(0.83334 * 120) = 100
        ("cifar10mnist", (3, 32, 32), ("cifar10", "mnist"), (80, 20, 40)),  # 100 pairs, int(0.8 * 100) = 80
    ]:
        s = load(name)
        assert (s.name, s.input_shape, s.task_names, s.num_classes) == (name, shape, tasks, (10, 10))
        assert (len(s.train), len(s.val), len(s.test)) == sizes
        for t in (s.train, s.val, s.test):
            assert t.x.dtype == torch.float32 and t.x.shape[1:] == shape
            assert t.y.dtype == torch.int64 and t.y.shape == (len(t), 2)
            assert t.y.min() >= 0 and t.y.max() <= 9


def test_multimnist_matches_brute_force_reference(load, synthetic_data_root):
    s = load("multimnist", build_seed=3)
    for train, split_x, split_y in [(True, None, None), (False, s.test.x, s.test.y)]:
        imgs, labels = _mnist(synthetic_data_root, train)
        partners = multimnist.draw_partners(len(imgs), 3, 0 if train else 1)
        ref = []
        for l, r in enumerate(partners):  # the original per-image recipe
            canvas = np.zeros((36, 36))
            canvas[0:28, 0:28] = imgs[l]
            canvas[6:34, 6:34] = np.maximum(canvas[6:34, 6:34], imgs[r])
            ref.append(resize(canvas, (28, 28), preserve_range=True).astype(np.uint8))
        ref_x = torch.stack([MM_NORM(Image.fromarray(a)) for a in ref])
        ref_y = torch.tensor(np.stack([labels, labels[partners]], 1))
        if train:  # the random_split order: train then val
            tr, va = _train_order(len(imgs), 0.83334)
            assert torch.equal(s.train.x, ref_x[tr]) and torch.equal(s.val.x, ref_x[va])
            assert torch.equal(s.train.y, ref_y[tr]) and torch.equal(s.val.y, ref_y[va])
        else:
            assert torch.equal(split_x, ref_x) and torch.equal(split_y, ref_y)


def test_multimnist_batched_resize_is_bit_exact():
    rng = np.random.default_rng(7)
    left = (rng.random((50, 28, 28)) < 0.3) * rng.integers(0, 256, (50, 28, 28))
    right = rng.integers(0, 256, (50, 28, 28)) // rng.integers(1, 4, (50, 1, 1))  # varied per-image max
    left, right = left.astype(np.uint8), right.astype(np.uint8)
    got = multimnist.compose(left, right)
    for i in range(50):
        canvas = np.zeros((36, 36))
        canvas[:28, :28] = left[i]
        canvas[6:34, 6:34] = np.maximum(canvas[6:34, 6:34], right[i])
        assert np.array_equal(got[i], resize(canvas, (28, 28), preserve_range=True).astype(np.uint8))


def test_cifar10mnist_matches_pil_paste(load, synthetic_data_root):
    s = load("cifar10mnist")
    for train in (True, False):
        cx, cy = _cifar(synthetic_data_root, train)
        mx, my = _mnist(synthetic_data_root, train)
        n = min(len(cx), len(mx))
        ref_x, ref_y = [], []
        for i in range(n):  # the original recipe, through PIL
            img = Image.fromarray(cx[i])
            digit = Image.fromarray(mx[i]).resize((32, 32))
            img.paste(digit.convert("RGB"), (0, 0), digit.point(lambda p: 128 if p > 0 else 0))
            ref_x.append(CIFAR_NORM(img))
            ref_y.append((cy[i], my[i]))
        ref_x, ref_y = torch.stack(ref_x), torch.tensor(ref_y)
        if train:
            tr, va = _train_order(n, 0.8)
            assert torch.equal(s.train.x, ref_x[tr]) and torch.equal(s.val.x, ref_x[va])
            assert torch.equal(s.train.y, ref_y[tr]) and torch.equal(s.val.y, ref_y[va])
        else:
            assert torch.equal(s.test.x, ref_x) and torch.equal(s.test.y, ref_y)


def test_normalisation_options(load):
    s = load("cifar10mnist", normalize=False, full_train=True)
    assert s.train.x.min() >= 0 and s.train.x.max() <= 1  # ToTensor only (MGDA setting)
    assert (len(s.train), len(s.val)) == (100, 0)
    s = load("multimnist")
    pixels = s.train.x * 0.3081 + 0.1307  # undo Normalize: back on the 0..1 grid of k/255
    assert torch.allclose(pixels * 255, (pixels * 255).round(), atol=1e-3)
    assert pixels.min() >= -1e-6 and pixels.max() <= 1 + 1e-6 and pixels.min() < 1e-6


def test_determinism_and_seeds(load, tmp_path):
    a = load("multimnist", cache_dir=tmp_path / "a")
    b = load("multimnist", cache_dir=tmp_path / "b")
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    c = load("multimnist", cache_dir=tmp_path / "a", build_seed=1)
    assert not torch.equal(a.test.x, c.test.x) and c.info["cache_file"] != a.info["cache_file"]
    d = load("multimnist", cache_dir=tmp_path / "a", split_seed=0)  # same composites, other split
    assert not torch.equal(a.train.y, d.train.y) and torch.equal(a.test.x, d.test.x) and d.info["cache_hit"]


def test_subset_and_batches():
    t = TaskTensors(torch.arange(10.0).view(10, 1, 1, 1), torch.arange(20).view(10, 2))
    assert torch.equal(t.subset(3).x.flatten(), torch.tensor([0.0, 1, 2])) and len(t.subset(None)) == 10
    sizes = [len(x) for x, _ in iterate_batches(t, 4, shuffle=False)]
    assert sizes == [4, 4, 2]
    runs = [
        torch.cat([x.flatten() for x, _ in iterate_batches(t, 4, True, torch.Generator().manual_seed(5))])
        for _ in range(2)
    ]
    assert torch.equal(runs[0], runs[1]) and sorted(runs[0].tolist()) == list(range(10))
    for x, y in iterate_batches(t, 3, True, torch.Generator().manual_seed(1)):
        assert torch.equal(y[:, 0], 2 * x.flatten().long())  # x and y stay paired


def test_splits_subset(load):
    s = load("multimnist").subset(n_train=7, n_test=5)
    assert (len(s.train), len(s.val), len(s.test)) == (7, 20, 5)


def test_cifar_md5_needs_opt_in(load, synthetic_data_root):
    with pytest.raises(DatasetError, match="md5") as e:
        load("cifar10mnist", allow_unverified_cifar=False)
    assert "allow_unverified_cifar=True" in str(e.value) and "--allow-unverified-cifar" in str(e.value)
    assert len(load("cifar10mnist", allow_unverified_cifar=True).test) == 40


def test_missing_data_messages(tmp_path, monkeypatch):
    monkeypatch.delenv("MDMTN_DATA", raising=False)
    with pytest.raises(DatasetError, match="MDMTN_DATA"):
        load_splits("multimnist", cache_dir=tmp_path)
    with pytest.raises(DatasetError) as e:
        load_splits("multimnist", tmp_path / "nowhere", cache_dir=tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "nowhere" / "MNIST" / "raw") in msg and "--download" in msg and "--data-dir" in msg
    synthetic.write_mnist(tmp_path / "only_mnist")  # CIFAR missing: a missing-file error, not an md5 one
    monkeypatch.setenv("MDMTN_DATA", str(tmp_path / "only_mnist"))
    with pytest.raises(DatasetError, match="not found under .*cifar-10-batches-py"):
        load_splits("cifar10mnist", cache_dir=tmp_path, allow_unverified_cifar=True)
    with pytest.raises(ValueError, match="unknown dataset"):
        load_splits("fashion", tmp_path)


def test_cache_hit_and_corruption(load, tmp_path, monkeypatch):
    first = load("multimnist")
    path = first.info["cache_file"]
    assert not first.info["cache_hit"] and path.startswith(str(tmp_path / "cache"))

    def no_build(*a, **k):
        raise AssertionError("rebuilt although the cache is valid")

    monkeypatch.setattr(multimnist, "build", no_build)
    second = load("multimnist")
    assert second.info["cache_hit"] and torch.equal(first.train.x, second.train.x)
    monkeypatch.undo()

    with open(path, "r+b") as f:  # truncated / garbled file: torch.load fails
        f.truncate(100)
    with pytest.warns(UserWarning, match="unreadable"):
        third = load("multimnist")
    assert not third.info["cache_hit"] and torch.equal(first.test.x, third.test.x)

    blob = torch.load(path, weights_only=True)  # valid file whose content no longer matches its checksum
    blob["arrays"]["test_x"][0, 0, 0, 0] ^= 1
    torch.save(blob, path)
    with pytest.warns(UserWarning, match="checksum"):
        fourth = load("multimnist")
    assert not fourth.info["cache_hit"] and torch.equal(first.test.x, fourth.test.x)
    assert load("multimnist").info["cache_hit"]  # repaired in place


def test_cache_key_follows_raw_input(tmp_path):
    a = synthetic.write_all(tmp_path / "a")
    b = tmp_path / "b"
    synthetic.write_mnist(b, seed=9)
    sa = load_splits("multimnist", a, cache_dir=tmp_path / "c")
    sb = load_splits("multimnist", b, cache_dir=tmp_path / "c")
    assert sa.info["input_sha256"] != sb.info["input_sha256"] and not sb.info["cache_hit"]
    assert cache_mod.sha256_arrays({"a": np.zeros(3)}) != cache_mod.sha256_arrays({"a": np.zeros(3)}, "v2")
