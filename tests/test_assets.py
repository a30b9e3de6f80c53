import pytest

from core import assets
from core.assets import AssetError, fetch_landmarker, landmarker_path


def test_installed_asset_verifies():
    assert landmarker_path().name == "face_landmarker.task"


def test_missing_asset_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv(assets.ENV_VAR, str(tmp_path / "face_landmarker.task"))
    with pytest.raises(AssetError, match="lipreader assets fetch"):
        landmarker_path()


def test_corrupt_asset(tmp_path, monkeypatch):
    bad = tmp_path / "face_landmarker.task"
    bad.write_bytes(b"not a model")
    monkeypatch.setenv(assets.ENV_VAR, str(bad))
    with pytest.raises(AssetError, match="corrupt"):
        landmarker_path()


def test_fetch_from_folder_verifies_checksum(shared_dir, tmp_path):
    dest = fetch_landmarker(shared_dir / "assets", tmp_path / "assets")
    assert assets.sha256_of(dest) == assets.LANDMARKER_SHA256
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "face_landmarker.task").write_bytes(b"x" * 100)
    with pytest.raises(AssetError, match="SHA-256"):
        fetch_landmarker(fake, tmp_path / "other")
    assert not (tmp_path / "other" / "face_landmarker.task").exists()
    assert list((tmp_path / "other").iterdir()) == []  # no temporary file left behind


def test_fetch_from_folder_without_asset(tmp_path):
    with pytest.raises(AssetError, match="no face_landmarker.task"):
        fetch_landmarker(tmp_path, tmp_path / "dest")
