"""What the three ejected programs share, as text: the data reader, the schedule, the batches
fmnist would train on, the augmentation, the weight average, the command line. Each of these is
plain NumPy (or Python), written once here so that the programs agree by construction."""

from __future__ import annotations

import textwrap

from ...engine.ejection import block, escaped
from ...labels import LABELS


def header(framework: str, model: str, recipe: str, run: str, weights: str, initial: str) -> str:
    model, recipe, run = escaped(model), escaped(recipe), escaped(run)
    return block(
        f'''
        """The {model} model of fmnist as a plain {framework} program, written by `fmnist eject`.

        {recipe}

        It needs {framework}, NumPy and Pillow, nothing of fmnist. It starts from the weights in
        {initial}, trains on the batches fmnist would train on (batches.npz: each epoch's order and
        augmentation draws), so that its losses can be compared with fmnist's step by step, and
        saves {weights}, which `fmnist evaluate` and `Trainer.load` read.

            {run}
        """
        '''
    )


LABELS_MAP = (
    "labels_map = {\n" + "".join(f"    {i}: {name!r},\n" for i, name in enumerate(LABELS)) + "}\n"
)

DATA = block(
    '''
    def read_idx(path: Path) -> np.ndarray:
        """One IDX file of Fashion-MNIST (raw, or gzip as Debian's dataset-fashion-mnist ships)."""
        data = path.read_bytes()
        if data[:2] == b"\\x1f\\x8b":
            data = gzip.decompress(data)
        dims = data[3]
        shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
        return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


    def find(folder: Path, stem: str) -> Path:
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
        raise SystemExit(f"{folder} has no {stem}[.gz]: pass the Fashion-MNIST folder with --data")


    def get_data(folder: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """(training images, labels), (test images, labels), as uint8 arrays."""
        training = (
            read_idx(find(folder, "train-images-idx3-ubyte")),
            read_idx(find(folder, "train-labels-idx1-ubyte")),
        )
        test = (
            read_idx(find(folder, "t10k-images-idx3-ubyte")),
            read_idx(find(folder, "t10k-labels-idx1-ubyte")),
        )
        return (training, test)
    '''
)


def schedule(kind: str, settings: dict) -> str:
    """``learning_rate(step)``: fmnist's schedule written out (0-based global step)."""
    if kind == "constant":
        body = "return LEARNING_RATE"
    elif kind == "step":
        body = (
            f"return LEARNING_RATE * {settings['gamma']!r} ** "
            f"(step // (STEPS_PER_EPOCH * {settings['step_epochs']!r}))"
        )
    elif kind == "cosine":
        low = f"LEARNING_RATE * {settings['min_fraction']!r}"
        body = (
            f"low = {low}\n"
            "return low + (LEARNING_RATE - low) * (1 + math.cos(math.pi * min(step / "
            "max(TOTAL_STEPS, 1), 1.0))) / 2"
        )
    else:
        body = block(
            f"""
            # PyTorch's OneCycleLR with cosine annealing: up over pct_start of the run, then down
            start = LEARNING_RATE / {settings["div_factor"]!r}
            end = start / {settings["final_div_factor"]!r}
            peak = {settings["pct_start"]!r} * TOTAL_STEPS - 1
            last = TOTAL_STEPS - 1

            def anneal(high: float, low: float, fraction: float) -> float:
                return low + (high - low) / 2 * (math.cos(math.pi * fraction) + 1)

            if step <= peak:
                return anneal(start, LEARNING_RATE, step / max(peak, 1e-12))
            return anneal(LEARNING_RATE, end, (step - peak) / max(last - peak, 1e-12))
            """
        ).rstrip("\n")
    return (
        "def learning_rate(step: int) -> float:\n"
        f'    """The learning rate of step `step` (0-based, over the whole run): {kind}."""\n'
        + textwrap.indent(body, "    ")
        + "\n"
    )


BATCHES = block(
    '''
    def batches_of(epoch: int, images: np.ndarray, labels: np.ndarray, draws) -> Iterator:
        """fmnist's batches of `epoch`: its seeded order, cut into BATCH_SIZE (the last one
        smaller), each image augmented by the draws fmnist made for its place in the order."""
        order = draws["order"][epoch]
        for start in range(0, len(order), BATCH_SIZE):
            chosen = order[start : start + BATCH_SIZE]
            yield augmented(images[chosen], draws, epoch, start), labels[chosen]
    '''
)

AUGMENT = block(
    '''
    def augmented(images: np.ndarray, draws, epoch: int, start: int) -> np.ndarray:
        """Flips, shifts (zero padding) and erased rectangles, as fmnist draws them."""
        out = np.array(images)
        places = slice(start, start + len(images))
        if "flips" in draws:
            flips = draws["flips"][epoch][places]
            out[flips] = out[flips, :, ::-1]
        if "shifts" in draws:
            n, h, w = out.shape
            shifts = draws["shifts"][epoch][places].astype(int)
            pad = max(1, int(np.abs(shifts).max()))
            padded = np.zeros((n, h + 2 * pad, w + 2 * pad), np.uint8)
            padded[:, pad : pad + h, pad : pad + w] = out
            for row, (dy, dx) in enumerate(shifts):
                out[row] = padded[row, pad - dy : pad - dy + h, pad - dx : pad - dx + w]
        if "boxes" in draws:
            for row, (top, left, height, width) in enumerate(draws["boxes"][epoch][places]):
                out[row, top : top + height, left : left + width] = 0
        return out
    '''
)

NO_AUGMENT = block(
    '''
    def augmented(images: np.ndarray, draws, epoch: int, start: int) -> np.ndarray:
        """This recipe trains on the images as they are."""
        return images
    '''
)

AVERAGE = block(
    '''
    class WeightAverage:
        """fmnist's average of the weights: every EMA_EVERY steps (and at an epoch's end),
        average = d · average + (1 - d) · weights, d the product of min(EMA_DECAY, (1+t)/(10+t))
        over those steps t; in float32, running statistics included. It is what is evaluated
        and saved."""

        def __init__(self, weights: dict):
            self.values = {k: np.array(v, np.float32) for k, v in weights.items()}
            self.steps = 0

        def update(self, weights: dict, steps: int) -> None:
            t = self.steps + np.arange(steps, dtype=np.float64)
            factor = np.float32(np.prod(np.minimum(EMA_DECAY, (1 + t) / (10 + t))))
            for name, value in weights.items():
                self.values[name] *= factor
                self.values[name] += (np.float32(1) - factor) * np.asarray(value, np.float32)
            self.steps += steps
    '''
)

CLI = block(
    """
    def main() -> None:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--data", type=Path, default=Path("/usr/share/datasets/fashion-mnist"),
                            help="the folder of the four Fashion-MNIST IDX files (raw or .gz)")
        parser.add_argument("--epochs", type=int, default=EPOCHS,
                            help="epochs to train, up to the recipe's (the schedule keeps its length)")
        parser.add_argument("--steps", type=int, default=0, help="stop after this many steps")
        parser.add_argument("--losses", type=Path, help="write each step's loss here (JSON list)")
        parser.add_argument("--out", type=Path, default=Path("outputs"),
                            help="where the trained weights go")
        parser.add_argument("--predict", type=Path, help="an image to classify after training")
        args = parser.parse_args()
        training_phase(args)
        inference_phase(args)


    if __name__ == "__main__":
        main()
    """
)


def settings_block(config, spec, steps_per_epoch: int) -> str:
    """The recipe as constants."""
    optimizer = config.optimizer
    lines = [
        f"EPOCHS = {config.epochs}",
        f"BATCH_SIZE = {config.batch_size}",
        f"LEARNING_RATE = {config.learning_rate!r}",
        f"STEPS_PER_EPOCH = {steps_per_epoch}  # the last batch of an epoch may be smaller",
        "TOTAL_STEPS = STEPS_PER_EPOCH * EPOCHS  # the schedule's length",
        f"OPTIMIZER = {optimizer.kind!r}",
    ]
    if optimizer.kind == "sgd":
        lines += [f"MOMENTUM = {optimizer.momentum!r}", f"NESTEROV = {optimizer.nesterov!r}"]
    else:
        lines += [
            f"BETA_1 = {optimizer.beta1!r}",
            f"BETA_2 = {optimizer.beta2!r}",
            f"EPSILON = {optimizer.eps!r}",
        ]
    lines += [
        f"WEIGHT_DECAY = {optimizer.weight_decay!r}",
        f"LABEL_SMOOTHING = {config.label_smoothing!r}",
        f"EMA_DECAY = {config.ema!r}  # None: no average of the weights",
        "EMA_EVERY = 5",
        f"TTA = {bool(config.tta)!r}  # average each test image's logits with its mirror's",
    ]
    return "\n".join(lines) + "\n"
