"""ncbench: measure, check and predict collective communication, from one node to a million GPUs."""

__version__ = "0.1.0"
