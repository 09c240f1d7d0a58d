import json
import shutil
import subprocess
import sys

import pytest


def fmnist(*args, env=None, check=True):
    out = subprocess.run(
        [sys.executable, "-m", "fmnist_core.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    if check:
        assert out.returncode == 0, out.stderr
    return out


def test_backends_json():
    rows = json.loads(fmnist("backends", "--json").stdout)
    assert "numpy" in [r["name"] for r in rows["backends"]]


def test_train_predict_evaluate(tmp_path, real_data_dir):
    run = tmp_path / "run"
    summary = json.loads(
        fmnist(
            "train",
            "--backend",
            "numpy",
            "--epochs",
            "1",
            "--out",
            run,
            "--data-dir",
            real_data_dir,
            "--json",
        ).stdout
    )
    assert summary["test_accuracy"] > 0.75
    for name in (
        "config.json",
        "history.json",
        "weights.safetensors",
        "evaluation.json",
        "checkpoint.safetensors",
    ):
        assert (run / name).is_file()
    written = json.loads(
        fmnist(
            "sample", tmp_path / "samples", "--count", "1", "--data-dir", real_data_dir, "--json"
        ).stdout
    )
    assert written == [
        {
            "path": str(tmp_path / "samples" / "00000-ankle-boot.png"),
            "index": 0,
            "label": "Ankle Boot",
        }
    ]
    predicted = json.loads(
        fmnist(
            "predict", "--weights", run / "weights.safetensors", written[0]["path"], "--json"
        ).stdout
    )
    assert predicted[0]["label"] == "Ankle Boot" and predicted[0]["path"].endswith(
        "00000-ankle-boot.png"
    )
    evaluated = json.loads(
        fmnist(
            "evaluate", run / "weights.safetensors", "--data-dir", real_data_dir, "--json"
        ).stdout
    )
    assert evaluated["accuracy"] == pytest.approx(summary["test_accuracy"])


def test_resume_continues_run(tmp_path, real_data_dir):
    run = tmp_path / "run"
    fmnist(
        "train",
        "--backend",
        "numpy",
        "--epochs",
        "1",
        "--out",
        run,
        "--data-dir",
        real_data_dir,
        "--quiet",
    )
    out = json.loads(
        fmnist(
            "train", "--resume", run, "--epochs", "2", "--data-dir", real_data_dir, "--json"
        ).stdout
    )
    history = json.loads((run / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [0, 1]
    assert len(out["epoch_seconds"]) == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--backend", "nope"], "unknown backend 'nope'"),
        (["train", "--backend", "numpy", "--batch-size", "0"], "batch_size must be"),
        (["predict", "--weights", "missing.safetensors", "x.png"], "does not exist"),
    ],
)
def test_errors_are_one_line(args, message):
    out = fmnist(*args, check=False)
    assert out.returncode == 1
    assert message in out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


def test_truncated_data_file_one_line(tmp_path, real_data_dir):
    folder = tmp_path / "data"
    shutil.copytree(real_data_dir, folder)
    bad = folder / "train-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:5000])
    out = fmnist(
        "train", "--backend", "numpy", "--data-dir", folder, "--out", tmp_path / "r", check=False
    )
    assert out.returncode == 1
    assert str(bad) in out.stderr and "truncated" in out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    debug = fmnist(
        "--debug",
        "train",
        "--backend",
        "numpy",
        "--data-dir",
        folder,
        "--out",
        tmp_path / "r",
        check=False,
    )
    assert "Traceback" in debug.stderr


def test_info_json(real_data_dir):
    info = json.loads(fmnist("info", "--json", "--data-dir", real_data_dir).stdout)
    assert info["data_found"]["place"] == "data_dir"


def test_sample_writes_test_images_that_load_back(tmp_path, real_data_dir):
    from fmnist_core import load_dataset, load_images

    fmnist("sample", tmp_path / "s", "--count", "12", "--start", "5", "--data-dir", real_data_dir)
    paths, images = load_images([tmp_path / "s"])
    assert [p.name[:5] for p in paths] == [f"{i:05d}" for i in range(5, 17)]
    test = load_dataset(real_data_dir).test
    assert (images == test.images[5:17]).all()
    rows = (tmp_path / "s" / "labels.csv").read_text().splitlines()
    assert (
        rows[0] == "file,dataset_index,label" and len(rows) == 13 and rows[1].startswith("00005-")
    )


def test_sample_bad_count_one_line(tmp_path, real_data_dir):
    out = fmnist("sample", tmp_path / "s", "--count", "0", "--data-dir", real_data_dir, check=False)
    assert (
        out.returncode == 1
        and "count must be an integer" in out.stderr
        and "Traceback" not in out.stderr
    )


def test_models_lists_recipes_with_parameter_counts():
    rows = {r["name"]: r for r in json.loads(fmnist("models", "--json").stdout)}
    assert rows["mlp"]["parameters"] == 784 * 20 + 20 + 20 * 10 + 10
    assert rows["cnn"]["recipe"]["optimizer"] == "adam" and rows["cnn"]["parameters"] > 10_000
    assert "conv1" in fmnist("models", "-v").stdout


def test_train_custom_optimizer_recorded(tmp_path, real_data_dir):
    run = tmp_path / "run"
    fmnist(
        "train",
        "--backend",
        "numpy",
        "--epochs",
        "1",
        "--out",
        run,
        "--data-dir",
        real_data_dir,
        "--quiet",
        "--no-plots",
        "--optimizer",
        "sgd",
        "--momentum",
        "0.9",
        "--nesterov",
        "--schedule",
        "cosine",
        "--lr",
        "0.02",
    )
    config = json.loads((run / "config.json").read_text())
    assert config["optimizer"] == {"kind": "sgd", "momentum": 0.9, "nesterov": True}
    assert config["schedule"] == {"kind": "cosine"} and config["learning_rate"] == 0.02
    evaluated = json.loads(
        fmnist(
            "evaluate", run / "weights.safetensors", "--data-dir", real_data_dir, "--json"
        ).stdout
    )
    assert evaluated["accuracy"] > 0.7


def test_convert_a_users_own_architecture(tmp_path):
    from fmnist_core import Conv2D, Dense, GlobalAvgPool, ModelSpec, ReLU, Trainer
    from fmnist_core.testing import synthetic_dataset

    spec = ModelSpec("mine", [Conv2D(4, 3), ReLU(), GlobalAvgPool(), Dense(10)])
    Trainer(backend="numpy", model=spec, data=synthetic_dataset(), verbose=0).save(
        tmp_path / "mine.safetensors"
    )
    fmnist("convert", tmp_path / "mine.safetensors", tmp_path / "copy.safetensors")
    assert Trainer.load(tmp_path / "copy.safetensors", verbose=0).model == spec


@pytest.mark.parametrize(
    "target, plugin, said",
    [
        ("m.keras", "fmnist_keras", "needs Keras"),
        ("m.h5", "fmnist_keras", "needs Keras"),
        ("m.pth", "fmnist_torch", "needs PyTorch"),
        ("m.savedmodel", "fmnist_tf", "needs TensorFlow"),
        ("m.txt", None, "no installed format writes .txt"),
    ],
)
def test_convert_to_a_format_nobody_installed_is_one_line(tmp_path, target, plugin, said):
    """Not safetensors bytes under a .keras name: a target fmnist cannot write names what to
    install, exit 1, and writes nothing."""
    import importlib.util

    from fmnist_core import Trainer
    from fmnist_core.testing import synthetic_dataset

    if plugin and importlib.util.find_spec(plugin):
        pytest.skip(f"{plugin} is installed here: the format is written (its plugin's tests)")
    Trainer(backend="numpy", data=synthetic_dataset(), verbose=0).save(tmp_path / "w.safetensors")
    out = fmnist("convert", tmp_path / "w.safetensors", tmp_path / target, check=False)
    assert out.returncode == 1 and said in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not (tmp_path / target).exists()


def test_train_a_model_from_a_json_file(tmp_path, real_data_dir):
    from fmnist_core import Dense, Flatten, ModelSpec, ReLU, Trainer

    spec = ModelSpec("wide", [Flatten(), Dense(32), ReLU(), Dense(10)])
    (tmp_path / "wide.json").write_text(json.dumps(spec.to_dict()))
    run = tmp_path / "run"
    fmnist(
        "train",
        "--backend",
        "numpy",
        "--model",
        tmp_path / "wide.json",
        "--epochs",
        "1",
        "--out",
        run,
        "--data-dir",
        real_data_dir,
        "--quiet",
        "--no-plots",
    )
    trained = Trainer.load(run / "weights.safetensors", verbose=0)
    assert trained.model == spec and trained.params["fc1.weight"].shape == (784, 32)
    for content, message in [
        ("{", "is not JSON"),
        ('{"layers": 3}', "a recorded architecture must be"),
    ]:
        (tmp_path / "bad.json").write_text(content)
        out = fmnist(
            "train",
            "--backend",
            "numpy",
            "--model",
            tmp_path / "bad.json",
            "--out",
            tmp_path / "r",
            check=False,
        )
        assert out.returncode == 1 and message in out.stderr and "Traceback" not in out.stderr
    out = fmnist("train", "--backend", "numpy", "--model", tmp_path / "missing.json", check=False)
    assert (
        out.returncode == 1
        and f"cannot read the model file {tmp_path / 'missing.json'}" in out.stderr
    )


def test_train_records_augmentation_smoothing_average_and_tta(tmp_path, real_data_dir):
    run = tmp_path / "run"
    from fmnist_core.cli import main

    code = main(
        [
            "train",
            "--backend",
            "numpy",
            "--epochs",
            "1",
            "--augment",
            "flip,translate:1",
            "--label-smoothing",
            "0.1",
            "--ema",
            "0.99",
            "--tta",
            "--no-plots",
            "--quiet",
            "--data-dir",
            str(real_data_dir),
            "--out",
            str(run),
        ]
    )
    assert code == 0
    config = json.loads((run / "config.json").read_text())
    assert (config["augment"], config["label_smoothing"], config["ema"], config["tta"]) == (
        "flip,translate:1",
        0.1,
        0.99,
        True,
    )
    assert json.loads((run / "evaluation.json").read_text())["accuracy"] > 0.7


def test_bad_augmentation_flag_is_one_line(tmp_path, capsys):
    from fmnist_core.cli import main

    assert main(["train", "--backend", "numpy", "--augment", "wobble", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "unknown augmentation 'wobble'" in err and len(err.strip().splitlines()) == 1


def test_a_run_folders_config_reproduces_the_run(tmp_path, real_data_dir):
    from fmnist_core.cli import main

    common = ["--no-plots", "--quiet", "--data-dir", str(real_data_dir)]
    assert (
        main(
            [
                "train",
                "--backend",
                "numpy",
                "--epochs",
                "2",
                "--batch-size",
                "128",
                "--lr",
                "0.05",
                "--augment",
                "flip",
                "--log-every",
                "50",
                *common,
                "--out",
                str(tmp_path / "a"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "train",
                "--config",
                str(tmp_path / "a" / "config.json"),
                *common,
                "--out",
                str(tmp_path / "b"),
            ]
        )
        == 0
    )
    first, again = (json.loads((tmp_path / run / "history.json").read_text()) for run in "ab")
    for record in first["epochs"] + again["epochs"]:
        record.pop("seconds")
    assert first == again
    assert json.loads((tmp_path / "b" / "config.json").read_text())["augment"] == "flip"


def test_toml_config_and_flags_override_it(tmp_path, real_data_dir):
    from fmnist_core.cli import main

    (tmp_path / "run.toml").write_text(
        'backend = "numpy"\nepochs = 3\nbatch_size = 256\nlearning_rate = 0.2\n'
        'optimizer = {kind = "sgd", momentum = 0.5}\n[options]\n'
    )
    assert (
        main(
            [
                "train",
                "--config",
                str(tmp_path / "run.toml"),
                "--epochs",
                "1",
                "--no-plots",
                "--quiet",
                "--data-dir",
                str(real_data_dir),
                "--out",
                str(tmp_path / "r"),
            ]
        )
        == 0
    )
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (config["epochs"], config["batch_size"], config["learning_rate"]) == (1, 256, 0.2)
    assert config["optimizer"] == {"kind": "sgd", "momentum": 0.5}


def test_a_users_architecture_is_recorded_and_reproduced(tmp_path, real_data_dir):
    from fmnist_core.cli import main

    spec = {
        "name": "mine",
        "layers": [
            {"type": "Flatten"},
            {"type": "Dense", "units": 16},
            {"type": "ReLU"},
            {"type": "Dense"},
        ],
    }
    (tmp_path / "mine.json").write_text(json.dumps(spec))
    common = [
        "--backend",
        "numpy",
        "--epochs",
        "1",
        "--no-plots",
        "--quiet",
        "--data-dir",
        str(real_data_dir),
    ]
    assert (
        main(
            ["train", "--model", str(tmp_path / "mine.json"), *common, "--out", str(tmp_path / "a")]
        )
        == 0
    )
    assert (
        json.loads((tmp_path / "a" / "config.json").read_text())["architecture"]["name"] == "mine"
    )
    assert (
        main(
            [
                "train",
                "--config",
                str(tmp_path / "a" / "config.json"),
                *common,
                "--out",
                str(tmp_path / "b"),
            ]
        )
        == 0
    )
    first, again = (
        json.loads((tmp_path / r / "evaluation.json").read_text())["accuracy"] for r in "ab"
    )
    assert first == again and first > 0.7


@pytest.mark.parametrize(
    "content, suffix, message",
    [
        ('{"epochz": 3}', ".json", "has no setting 'epochz' (did you mean 'epochs'?)"),
        ("epochs = ", ".toml", "is not valid TOML"),
        ("[1, 2]", ".json", "holds a list, not a table of settings"),
        (
            '{"options": {"turbo": true}, "backend": "numpy"}',
            ".json",
            "backend 'numpy' has no option 'turbo'",
        ),
        (
            '{"data": {"arrays": "abc"}}',
            ".json",
            "trained on arrays, which a config file cannot hold",
        ),
    ],
)
def test_a_bad_config_file_is_one_line(tmp_path, capsys, content, suffix, message):
    from fmnist_core.cli import main

    path = tmp_path / f"bad{suffix}"
    path.write_text(content)
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_models_shows_measured_figures_of_built_in_recipes():
    """bench/speedrun.py --record writes measured.json; fmnist models shows each recipe's mean
    test accuracy, its spread and fit time, and where they were measured."""
    from fmnist_core.cli.models import measured

    figures = measured()
    rows = {r["name"]: r for r in json.loads(fmnist("models", "--json").stdout)}
    assert figures, "src/fmnist_core/builtin/measured.json is missing or empty"
    text = fmnist("models").stdout
    for recipe, backends in figures.items():
        assert recipe in rows, f"measured.json names {recipe!r}, which is not a recipe"
        assert rows[recipe]["measured"] == backends
        for backend, f in backends.items():
            assert 0.0 < f["accuracy"] <= 1.0 and f["seeds"] >= 2 and f["fit_seconds"] > 0
            assert f"{backend} {f['accuracy']:.4f}" in text
        assert f"[{next(iter(backends.values()))['machine']}" in text


def test_every_option_of_every_command_has_help_and_shows_its_default():
    import argparse

    from fmnist_core.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing, hidden_defaults = [], []
    for name, command in sub.choices.items():
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            label = f"fmnist {name} {'/'.join(action.option_strings) or action.dest}"
            if not action.help:
                missing.append(label)
            elif action.default not in (None, False, argparse.SUPPRESS, []):
                if "default" not in action.help:
                    hidden_defaults.append(label)
    assert not missing, f"options without help: {missing}"
    assert not hidden_defaults, f"defaults not shown: {hidden_defaults}"
    assert "(default: 8000)" in fmnist("serve", "--help").stdout
