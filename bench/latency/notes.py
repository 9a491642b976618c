"""What the latency benchmark uploads: a small note (two short paragraphs) carrying a nonsense
word of its own, which no corpus holds, so that the note is the top hit for it."""

import random

SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
PARAGRAPHS = (
    "The {word} survey counted the lighthouses along the northern coast and noted which of "
    "them still burn oil. Most keepers have left, and the lamps are tended from the mainland.",
    "Visitors who ask about the {word} method are shown how a wick is trimmed so the flame "
    "stays low and steady through a winter storm, and why the glass is cleaned at dawn.",
)


def nonsense(rng: random.Random) -> str:
    """A word no corpus holds: five random syllables."""
    return "".join(rng.choice(SYLLABLES) for _ in range(5))


def note(word: str) -> tuple[str, bytes]:
    return f"note-{word}.txt", "\n\n".join(p.format(word=word) for p in PARAGRAPHS).encode()
