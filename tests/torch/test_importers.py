"""``ModelSpec.from_torch`` takes only what fmnist computes exactly (issue 42): anything else is
a one-line ``ConfigError`` naming the module and the attribute."""

import itertools

import pytest
from torch import nn

from fmnist_core import ConfigError, ModelSpec


class Doubled(nn.Linear):
    def forward(self, x):
        return 2 * super().forward(x)


class Custom(nn.Sequential):
    def forward(self, x):
        return -super().forward(x)


def head(*layers):
    return nn.Sequential(*layers)


@pytest.mark.parametrize(
    "model, said",
    [
        (None, "None"),
        ([nn.Flatten(), nn.Linear(784, 10)], "list"),
        (Custom(nn.Flatten(), nn.Linear(784, 10)), "got Custom"),
        (head(nn.Flatten(), Doubled(784, 10)), "Doubled"),
        (head(nn.Flatten(), nn.Linear(100, 10)), "in_features=100"),
        (head(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(5408, 10)), "in_channels=3"),
        (
            head(
                nn.Conv2d(1, 8, 3, padding=1, padding_mode="reflect"),
                nn.Flatten(),
                nn.Linear(6272, 10),
            ),
            "padding_mode",
        ),  # fmt: skip
        (head(nn.MaxPool2d(3, ceil_mode=True), nn.Flatten(), nn.Linear(100, 10)), "ceil_mode"),
        (
            head(nn.AvgPool2d(2, divisor_override=3), nn.Flatten(), nn.Linear(196, 10)),
            "divisor_override",
        ),  # fmt: skip
        (head(nn.MaxPool2d(2, dilation=2), nn.Flatten(), nn.Linear(169, 10)), "dilation"),
        (head(nn.Flatten(start_dim=0), nn.Linear(784, 10)), "start_dim"),
        (
            head(
                nn.Conv2d(1, 4, 3),
                nn.BatchNorm2d(4, track_running_stats=False),
                nn.Flatten(),
                nn.Linear(2704, 10),
            ),
            "track_running_stats",
        ),  # fmt: skip
        (
            head(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(2704, 10)),
            "num_features=8",
        ),  # fmt: skip
    ],
)
def test_what_fmnist_does_not_compute_is_refused_by_name(model, said):
    with pytest.raises(ConfigError, match="from_torch") as caught:
        ModelSpec.from_torch(model)
    assert said in str(caught.value) and "\n" not in str(caught.value)


def test_an_endless_stream_of_layers_is_bounded():
    class Sequential(nn.Sequential):  # as torch's own, but its layers never end
        __module__ = "torch.nn.modules.container"

        def children(self):
            return (nn.ReLU() for _ in itertools.count())

    with pytest.raises(ConfigError, match="more than"):
        ModelSpec.from_torch(Sequential())


def test_what_it_computes_exactly_is_taken():
    spec = ModelSpec.from_torch(
        nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(784, 10),
        )  # fmt: skip
    )
    assert [layer.kind for layer in spec.layers] == [
        "Conv2D", "BatchNorm", "ReLU", "MaxPool2D", "Flatten", "Dense"
    ]  # fmt: skip
