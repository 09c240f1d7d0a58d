"""fmnist's onnxruntime backend: ``Trainer.load("model.onnx")`` evaluates and predicts with no
training framework installed. Importing this imports no onnxruntime."""

__version__ = "0.4.0"
