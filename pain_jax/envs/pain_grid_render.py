"""RGB frames of Pain Grid states (numpy, on the host; for notebooks and videos).

Colours: floor light grey, walls dark grey, resources green (a centred square),
hazards orange-red (the whole cell), agents in distinct colours (agent ``i`` in
``AGENT_COLOURS[i]``, inset so a hazard under an agent stays visible) with a dark
mark on the side they face.
"""

from __future__ import annotations

import jax
import numpy as np

FLOOR = (235, 235, 235)
WALL = (70, 70, 70)
RESOURCE = (40, 160, 60)
HAZARD = (235, 110, 30)
MARK = (20, 20, 20)
#: one colour per agent (up to 12), distinct from the object colours
AGENT_COLOURS = (
    (31, 119, 180),
    (148, 103, 189),
    (227, 119, 194),
    (23, 190, 207),
    (140, 86, 75),
    (188, 189, 34),
    (0, 0, 128),
    (128, 0, 128),
    (255, 215, 0),
    (0, 128, 128),
    (127, 127, 127),
    (200, 0, 0),
)


def render(env, state, cell: int = 8) -> np.ndarray:
    """uint8 ``(H * cell, W * cell, 3)`` frame of one unbatched ``PainGridState``."""
    if cell < 3:
        raise ValueError(f"cell must be >= 3 pixels, got {cell}")
    s = jax.device_get(state)
    img = np.empty((env.height, env.width, cell, cell, 3), np.uint8)
    img[...] = FLOOR
    for r, c in env.walls:
        img[r, c] = WALL
    inset = max(1, cell // 4)
    for (r, c), on in zip(s.resource_pos, s.resource_present, strict=True):
        if on:
            img[r, c, inset:-inset, inset:-inset] = RESOURCE
    for (r, c), on in zip(s.hazard_pos, s.hazard_present, strict=True):
        if on:
            img[r, c] = HAZARD
    edge = max(1, cell // 8)
    for i, ((r, c), h) in enumerate(zip(s.agent_pos, s.heading, strict=True)):
        tile = img[r, c]
        tile[edge:-edge, edge:-edge] = AGENT_COLOURS[i % len(AGENT_COLOURS)]
        mid = slice(cell // 2 - edge, cell // 2 + edge)
        side = {0: (slice(0, 2 * edge), mid), 1: (mid, slice(-2 * edge, None))}
        side |= {2: (slice(-2 * edge, None), mid), 3: (mid, slice(0, 2 * edge))}
        tile[side[int(h)]] = MARK
    return img.transpose(0, 2, 1, 3, 4).reshape(env.height * cell, env.width * cell, 3)


def render_frames(env, states, cell: int = 8) -> np.ndarray:
    """uint8 ``(T, H * cell, W * cell, 3)``: ``states`` is a list of states or one
    state whose leaves have a leading time axis ``T`` (e.g. from ``lax.scan``)."""
    if not isinstance(states, list | tuple):
        states = jax.device_get(states)
        n = np.asarray(states.time).shape[0]
        states = [jax.tree.map(lambda x, t=t: x[t], states) for t in range(n)]
    return np.stack([render(env, s, cell) for s in states])
