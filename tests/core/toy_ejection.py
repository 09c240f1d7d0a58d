"""A toy framework for tests/core/test_one_table.py: a lowering table with only layer texts and
an ejection table writing a NumPy "program" whose initial weights are fmnist's own safetensors,
so that tests-core ejects with no plugin."""

from fmnist_core import EjectionTable, LoweringTable

LOWERINGS = LoweringTable("toy")

EJECTION = EjectionTable(
    "toy", title="Toy", weights_format="safetensors", initial="initial.safetensors",
    weights="weights.safetensors",
)  # fmt: skip


@LOWERINGS.text("Flatten")
def flatten(layer, shape, lines, x):
    lines.forward(f"{x} = {x}.reshape(len({x}), -1)")


@LOWERINGS.text("Dense")
def dense(layer, shape, lines, x):
    lines.init(f"{lines.attribute(layer)} = np.zeros(({shape[0]}, {layer.units}))")
    lines.forward(f"{x} = {x} @ {lines.attribute(layer)}")


@LOWERINGS.text("ReLU")
def relu(layer, shape, lines, x):
    lines.forward(f"{x} = np.maximum({x}, 0)")


@EJECTION.program
def program(spec, config, lines):
    lines.stack(spec.layers, spec.input_shape)
    body = "".join(f"    {line}\n" for line in lines.inits + lines.forwards)
    return {
        "imports": "import numpy as np\n",
        "NeuralNetwork": f"def network(x):\n{body}    return x\n",
        "training": "def training_phase(args):\n    pass\n\n\n"
        "def inference_phase(args):\n    pass\n",
    }
