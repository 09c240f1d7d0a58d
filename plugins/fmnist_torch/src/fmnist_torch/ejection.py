"""fmnist-torch's ejection table: the PyTorch program ``fmnist eject --to torch`` writes (the
article's PyTorch code, for any model fmnist knows) around its layers, whose texts are in the
lowering table (``lowering.py``, beside each layer's module)."""

from __future__ import annotations

from fmnist_core.plugin_api import EjectionTable, block, escaped

EJECTION = EjectionTable(
    "torch", title="PyTorch", weights_format="pth", initial="initial.pth", weights="weights.pth"
)

IMPORTS = """import argparse
import gzip
import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F
"""

BATCH_NORM = block(
    '''
    class BatchNorm(nn.BatchNorm2d):
        """nn.BatchNorm2d (for (N, C) input too) whose running variance takes the batch's biased
        variance, as fmnist and Keras do; torch's own takes the unbiased one."""

        def _check_input_dim(self, x: torch.Tensor) -> None:
            pass

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if not self.training:
                return super().forward(x)
            mean, var = self.running_mean.clone(), self.running_var.clone()
            out = F.batch_norm(x, mean, var, self.weight, self.bias, True, self.momentum, self.eps)
            count = x.numel() // x.shape[1]
            with torch.no_grad():  # torch updated the copies with the unbiased variance
                self.running_mean.copy_(mean)
                self.running_var.copy_(var - (var - (1 - self.momentum) * self.running_var) / count)
                self.num_batches_tracked.add_(1)
            return out
    '''
)


def network(spec, lines) -> str:
    if spec.name == "mlp" and spec.is_two_layer_perceptron():
        hidden = spec.layers[1].units
        return block(
            f"""
                class NeuralNetwork(nn.Module):
                    def __init__(self):
                        super().__init__()
                        self.sequence = nn.Sequential(
                            nn.Flatten(),
                            nn.Linear(28*28, {hidden}),
                            nn.ReLU(),
                            nn.Linear({hidden}, 10)
                        )

                    def forward(self, x: torch.Tensor) -> torch.Tensor:
                        y_prime = self.sequence(x)
                        return y_prime
                """
        )
    lines.stack(spec.layers, (*spec.input_shape, 1))
    init = "\n".join("        " + line for line in lines.inits)
    forward = "\n".join("        " + line for line in lines.forwards)
    text = (
        "class NeuralNetwork(nn.Module):\n"
        f'    """fmnist\'s {escaped(spec.name)}: {escaped(spec.description)}"""\n\n'
        "    def __init__(self):\n"
        "        super().__init__()\n"
        f"{init}\n\n"
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:\n"
        f"{forward}\n"
        "        return x\n"
    )
    return (BATCH_NORM + "\n\n" if "BatchNorm" in lines.needs else "") + text


TRAINING = block(
    """
    def as_tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        X = torch.from_numpy(images.astype(np.float32) / np.float32(255.0)).unsqueeze(1)
        return (X, torch.from_numpy(labels.astype(np.int64)))


    def weights_of(model: nn.Module) -> dict:
        return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()
                if v.dtype.is_floating_point}


    def fit_one_batch(X: torch.Tensor, y: torch.Tensor, model: NeuralNetwork,
                      loss_fn: nn.CrossEntropyLoss, optimizer: torch.optim.Optimizer
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        y_prime = model(X)
        loss = loss_fn(y_prime, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return (y_prime, loss)


    def fit(epoch: int, step: int, data, draws, model: nn.Module, loss_fn: nn.CrossEntropyLoss,
            optimizer: torch.optim.Optimizer, average, args, losses: list) -> int:
        batch_count = STEPS_PER_EPOCH
        full_batches = len(draws["order"][epoch]) // BATCH_SIZE
        loss_sum = 0
        correct_item_count = 0
        current_item_count = 0
        print_every = 100
        since_average = 0
        model.train()
        for batch_index, (images, labels) in enumerate(batches_of(epoch, *data, draws)):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step)
            (X, y) = as_tensors(images, labels)
            (y_prime, loss) = fit_one_batch(X, y, model, loss_fn, optimizer)
            step += 1
            losses.append(loss.item())
            if average is not None:
                since_average += 1
                if since_average == EMA_EVERY or batch_index + 1 in (full_batches, batch_count):
                    average.update(weights_of(model), since_average)
                    since_average = 0
            correct_item_count += (y_prime.argmax(1) == y).type(torch.int8).sum().item()
            batch_loss = loss.item()
            loss_sum += batch_loss
            current_item_count += len(X)
            if ((batch_index + 1) % print_every == 0) or ((batch_index + 1) == batch_count):
                batch_accuracy = correct_item_count / current_item_count * 100
                print(f'[Batch {batch_index + 1:>3d} - {current_item_count:>5d} items] accuracy: {batch_accuracy:>0.1f}%, loss: {batch_loss:>7f}')
            if args.steps and step >= args.steps:
                break
        return step


    def evaluate_one_batch(X: torch.Tensor, y: torch.Tensor, model: NeuralNetwork,
                           loss_fn: nn.CrossEntropyLoss) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            y_prime = model(X)
            if TTA:
                y_prime = (y_prime + model(torch.flip(X, dims=[3]))) / 2
            loss = loss_fn(y_prime, y)
        return (y_prime, loss)


    def evaluate(images: np.ndarray, labels: np.ndarray, model: nn.Module,
                 loss_fn: nn.CrossEntropyLoss) -> tuple[float, float]:
        batch_count = 0
        loss_sum = 0
        correct_item_count = 0
        item_count = 0
        model.eval()
        with torch.no_grad():
            for start in range(0, len(images), 1000):
                (X, y) = as_tensors(images[start : start + 1000], labels[start : start + 1000])
                (y_prime, loss) = evaluate_one_batch(X, y, model, loss_fn)
                correct_item_count += (y_prime.argmax(1) == y).type(torch.int8).sum().item()
                loss_sum += loss.item()
                item_count += len(X)
                batch_count += 1
        average_loss = loss_sum / batch_count
        accuracy = correct_item_count / item_count
        return (average_loss, accuracy)


    def training_phase(args: argparse.Namespace) -> None:
        (training, (test_images, test_labels)) = get_data(args.data)
        draws = dict(np.load(HERE / "batches.npz"))
        if args.epochs > len(draws["order"]):
            raise SystemExit(f"batches.npz holds {len(draws['order'])} epochs; pass --epochs up to that")
        model = NeuralNetwork()
        model.load_state_dict(torch.load(HERE / "INITIAL", weights_only=True))
        loss_fn = nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING)
        optimizer = OPTIMIZER_LINE
        average = WeightAverage(weights_of(model)) if EMA_DECAY else None
        print('\\nFitting:')
        (step, losses) = (0, [])
        for epoch in range(args.epochs):
            print(f'\\nEpoch {epoch + 1}\\n-------------------------------')
            step = fit(epoch, step, training, draws, model, loss_fn, optimizer, average, args, losses)
            if args.steps and step >= args.steps:
                break
        if args.losses:
            args.losses.write_text(json.dumps(losses))
        if average is not None:  # the average is what fmnist evaluates and saves
            state = model.state_dict()
            state.update({k: torch.from_numpy(v) for k, v in average.values.items()})
            model.load_state_dict(state)
        print('\\nEvaluating:')
        (test_loss, test_accuracy) = evaluate(test_images, test_labels, model, nn.CrossEntropyLoss())
        print(f'Test accuracy: {test_accuracy * 100:>0.1f}%, test loss: {test_loss:>8f}')
        args.out.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), args.out / 'weights.pth')


    def predict(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            y_prime = model(X)
            probabilities = nn.functional.softmax(y_prime, dim=1)
            predicted_indices = probabilities.argmax(1)
            return predicted_indices


    def inference_phase(args: argparse.Namespace) -> None:
        model = NeuralNetwork()
        model.load_state_dict(torch.load(args.out / 'weights.pth', weights_only=True))
        model.eval()
        if args.predict is None:  # nothing to predict: the weights were read back
            return
        print('\\nPredicting:')
        with Image.open(args.predict) as image:
            X = np.asarray(image.convert('L')).reshape((-1, 28, 28)) / 255.0
            X = torch.Tensor(X).unsqueeze(1)
        predicted_index = predict(model, X).item()
        predicted_name = labels_map[predicted_index]
        print(f'Predicted class: {predicted_name}')
    """
)


def optimizer_line(optimizer) -> str:
    if optimizer.kind == "sgd":
        return (
            "torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM, "
            "nesterov=NESTEROV, weight_decay=WEIGHT_DECAY)"
        )
    name = "Adam" if optimizer.kind == "adam" else "AdamW"
    return (
        f"torch.optim.{name}(model.parameters(), lr=LEARNING_RATE, betas=(BETA_1, BETA_2), "
        "eps=EPSILON, weight_decay=WEIGHT_DECAY)"
    )


@EJECTION.program
def program(spec, config, lines) -> dict[str, str]:
    training = TRAINING.replace("OPTIMIZER_LINE", optimizer_line(config.optimizer))
    training = training.replace("INITIAL", "initial.pth")
    return {"imports": IMPORTS, "NeuralNetwork": network(spec, lines), "training": training}
