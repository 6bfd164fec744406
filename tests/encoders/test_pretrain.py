"""`study pretrain`: supervised and self-supervised VGG-19 pretraining, its weights file and MLflow run."""

from __future__ import annotations

import mlflow
import numpy as np
import torch
from skimage.io import imsave
from typer.testing import CliRunner

from study.cli import app
from study.encoders.vgg import FeatureExtractor, feature_extractor, load_state_dict, vgg19_features
from study.encoders.pretrain import natural_images, pretrain

from helpers import mlflow_runs


def _labelled_folder(root, n=12, size=40, seed=0):
    """Two classes a network can tell apart: dark images with a bright disc vs. bright images with a dark disc."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    for cls, (bg, fg) in {"bright_disc": (0.15, 0.85), "dark_disc": (0.85, 0.15)}.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            r = rng.uniform(6, 12)
            img = np.where((yy - size / 2) ** 2 + (xx - size / 2) ** 2 < r**2, fg, bg) + rng.normal(0, 0.05, (size, size))
            imsave(root / cls / f"{i:03d}.png", (np.clip(img, 0, 1) * 255).astype(np.uint8), check_contrast=False)
    return root


def test_supervised_pretraining_learns_and_writes_a_loadable_file(tmp_path):
    root = _labelled_folder(tmp_path / "data")
    out = tmp_path / "w" / "medical.pt"
    res = CliRunner().invoke(app, ["pretrain", str(root), "-o", str(out), "--method", "supervised", "--steps", "25",
                                   "--batch-size", "8", "--patch", "32", "--lr", "1e-4", "--input", "unit"])
    assert res.exit_code == 0, res.output
    sd, meta = load_state_dict(str(out))
    assert meta["loss_last"] < meta["loss_first"] and meta["class_names"] == ["bright_disc", "dark_disc"]
    assert meta["accuracy_last"] > meta["chance_accuracy"]
    assert len(meta["dataset_sha256"]) == 64 and len(meta["weights_id"]) == 64
    enc = feature_extractor("block5_conv4", str(out))  # loadable as a perceptual encoder by path
    assert isinstance(enc, FeatureExtractor)
    runs = mlflow_runs(f"sqlite:///{out.parent / 'mlflow.db'}", "pretrain")
    assert len(runs) == 1 and runs["tags.weights_id"].iloc[0] == meta["weights_id"]
    history = mlflow.MlflowClient(f"sqlite:///{out.parent / 'mlflow.db'}").get_metric_history(runs["run_id"].iloc[0], "loss")
    assert len(history) == 25


def test_pretrained_features_separate_the_classes_better_than_random(tmp_path):
    """Cross-entropy training pulls the pooled features of the two classes apart along the head's direction, so
    the trained head + features classify held-out images; the same head on the untrained (random) features,
    which were never fitted to it, does not."""
    from study.encoders.pretrain import folder_images, train_classifier

    images, labels, _, _ = folder_images(_labelled_folder(tmp_path / "d", n=16, seed=1), labelled=True)
    trained, _, _ = train_classifier(images[::2], labels=labels[::2], n_classes=2, method="supervised", steps=30,
                                     batch_size=8, lr=1e-4, patch=32, input_mode="unit")
    sd, head = trained[0].features.state_dict(), trained[3]

    def accuracy(state_dict):
        feats = vgg19_features()
        feats.load_state_dict(state_dict)
        model = torch.nn.Sequential(FeatureExtractor(feats, "unit"), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), head)
        x = torch.from_numpy(np.stack([im[4:36, 4:36] for im in images[1::2]]))[:, None]
        with torch.no_grad():
            return (model(x).argmax(1).numpy() == np.asarray(labels[1::2])).mean()

    torch.manual_seed(0)
    random_sd = vgg19_features().state_dict()
    assert accuracy(sd) >= 0.9 and accuracy(random_sd) <= 0.75


def test_rotnet_on_natural_photographs_runs_offline():
    images, digest = natural_images()
    assert len(images) >= 10 and all(im.dtype == np.float32 and 0 <= im.min() and im.max() <= 1 for im in images)
    sd, meta = pretrain(images, method="rotnet", steps=3, batch_size=4, lr=1e-4, patch=32, seed=1)
    assert meta["classes"] == 4 and set(sd) == set(vgg19_features().state_dict())


def test_bad_pretraining_inputs_are_one_line(tmp_path):
    (tmp_path / "flat").mkdir()
    imsave(tmp_path / "flat" / "a.png", np.zeros((40, 40), np.uint8), check_contrast=False)
    res = CliRunner().invoke(app, ["pretrain", str(tmp_path / "flat"), "-o", str(tmp_path / "x.pt"), "--method",
                                   "supervised"])
    assert res.exit_code == 2 and "class folders" in res.output and not (tmp_path / "x.pt").exists()
    res = CliRunner().invoke(app, ["pretrain", str(tmp_path / "nope"), "-o", str(tmp_path / "x.pt")])
    assert res.exit_code == 2 and "not a folder" in res.output
