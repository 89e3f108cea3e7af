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
- `people`: replies under a user's items, stories entering and leaving lists;
- `moderation`: stories killed, flagged, deleted and retitled;
- `updates`: the ``updates.json`` change log;
- `server`: HTTP, faults, statistics;
- `sse`: the event stream (Firebase's REST streaming) on ``maxitem`` and the lists, with its faults;
- `cli`: the ``flamewatch simulate`` command.
"""

from .cli import add_simulate_arguments, run_simulate
from .items import REMOVE
from .lists import LIST_NAMES
from .model import ThreadModel, grow_tree, load_shape
from .server import Faults, SimStats, SimulatorServer, make_app
from .sse import StreamFaults, StreamHub
from .world import World
from .people import drop_from_list, place_on_list, reply_to_user
from .moderation import delete_story, flag_story, kill_story, retitle_story

__all__ = [
    "LIST_NAMES",
    "REMOVE",
    "Faults",
    "SimStats",
    "SimulatorServer",
    "StreamFaults",
    "StreamHub",
    "ThreadModel",
    "World",
    "add_simulate_arguments",
    "delete_story",
    "drop_from_list",
    "flag_story",
    "grow_tree",
    "kill_story",
    "load_shape",
    "make_app",
    "place_on_list",
    "reply_to_user",
    "retitle_story",
    "run_simulate",
]
