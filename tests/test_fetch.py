"""Set-up fetching: verified by sha256, clear one-line errors, resumable, idempotent."""
from dataclasses import replace

import pytest

from data.fetch import FetchError, ensure_wheel, fetch_artifact, is_complete
from data.registry import FILM_SUMMARIES, ML_100K, Wheel


def test_hash_mismatch_is_a_clear_error(tmp_path):
    wrong = replace(ML_100K.wheels[0], sha256="0" * 64)
    with pytest.raises(FetchError, match=r"sha256 mismatch for recbole-1.2.1-py3-none-any.whl: expected 0+, got 9c99"):
        ensure_wheel(wrong, tmp_path)
    assert not list(tmp_path.glob("*.whl"))


def test_unknown_release_is_a_one_line_registry_error(tmp_path):
    missing = Wheel("recbole", "99.99.99", "recbole-99.99.99-py3-none-any.whl", "0" * 64)
    with pytest.raises(FetchError) as err:
        ensure_wheel(missing, tmp_path)
    assert "cannot download recbole==99.99.99 from the package registry" in str(err.value)
    assert "\n" not in str(err.value)


def test_fetch_resumes_after_interruption_and_is_idempotent(tmp_path, monkeypatch):
    downloads, raw = tmp_path / "dl", tmp_path / "raw"
    target = raw / FILM_SUMMARIES.name
    target.mkdir(parents=True)
    (target / "movie_summaries.json.partial").write_bytes(b"half a file")  # what a kill leaves behind
    assert not is_complete(FILM_SUMMARIES, raw)
    fetch_artifact(FILM_SUMMARIES, downloads, raw)
    assert is_complete(FILM_SUMMARIES, raw)
    assert (target / "movie_summaries.json").stat().st_size == 1_049_816
    def no_download(*_):
        raise AssertionError("a complete artifact must not be downloaded again")

    monkeypatch.setattr("data.fetch._pip_download", no_download)
    fetch_artifact(FILM_SUMMARIES, downloads, raw)
    (target / "movie_summaries.json").unlink()
    assert not is_complete(FILM_SUMMARIES, raw)
