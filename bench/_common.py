import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ui.offline import go_offline  # noqa: E402

go_offline()

# First requests of the benchmark sessions (turn latency, load, refresh while serving): one set, so
# their numbers describe the same kind of turn.
FIRST_REQUESTS = ["a funny 90s comedy", "scary movies from the 80s but nothing too gory", "a smart sci-fi film",
                  "a western from the 60s", "romantic comedies from the early 90s", "crime thrillers without romance",
                  "an animated film for kids", "a war drama from before 1970", "something like Alien",
                  "a feel-good adventure movie"]
