"""A simulated Hacker News API on loopback, for the demo, the tests and the benchmarks.

Modules, one job each:

- `model`: the thread-shape model and its calibration data;
- `text`: titles, usernames, comment bodies;
- `frontpage`: a new world's calibrated front page;
- `world`: `World`, the items and lists, their editing, growth steps;
- `growth`: what changes in one growth step;
- `items`: served items, their JSON cache, id allocation;
- `threads`: per-story comment bookkeeping;
- `lists`: the story lists;
- `updates`: the ``updates.json`` change log;
- `server`: HTTP, faults, statistics;
- `cli`: the ``flamewatch simulate`` command.
"""

from .cli import add_simulate_arguments, run_simulate
from .items import REMOVE
from .lists import LIST_NAMES
from .model import ThreadModel, grow_tree, load_shape
from .server import Faults, SimStats, SimulatorServer, make_app
from .world import World

__all__ = [
    "LIST_NAMES",
    "REMOVE",
    "Faults",
    "SimStats",
    "SimulatorServer",
    "ThreadModel",
    "World",
    "add_simulate_arguments",
    "grow_tree",
    "load_shape",
    "make_app",
    "run_simulate",
]
