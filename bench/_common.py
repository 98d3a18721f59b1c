import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ui.offline import go_offline  # noqa: E402

go_offline()
