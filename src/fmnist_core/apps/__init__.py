"""Applications built on the training API: ``serve`` (HTTP), ``tune`` (Ray Tune sweeps) and
``plots`` (the pictures of a run)."""
