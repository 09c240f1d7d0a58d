"""fmnist's own plugins, registered like any other (``fmnist_core.plugins.DEFAULT_PLUGINS``):
the built-in layer types, recipes, weight formats, the NumPy reference backend and the
commands of the ``fmnist`` command line."""
