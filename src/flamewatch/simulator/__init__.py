"""A simulated Hacker News API on loopback, for the demo, the tests and the benchmarks."""

from .server import *  # noqa: F403
from .world import LIST_NAMES, ThreadModel, grow_tree, load_shape  # noqa: F401
