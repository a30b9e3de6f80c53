import pytest

from core import assets
from core.assets import AssetError, fetch_landmarker, landmarker_path


def test_installed_asset_verifies():
    assert landmarker_path().name == "face_landmarker.task"


def test_missing_asset_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv(assets.ENV_VAR, raising=False)
    monkeypatch.setattr(assets, "assets_dir", lambda: tmp_path)
    with pytest.raises(AssetError, match="is missing: run `lipreader assets fetch`"):
        landmarker_path()


def test_a_bad_override_names_the_variable_not_fetch(tmp_path, monkeypatch):
    # fetching installs into assets/, which the variable bypasses: the fix is the variable
    monkeypatch.setenv(assets.ENV_VAR, str(tmp_path / "face_landmarker.task"))
    with pytest.raises(AssetError, match="is missing: set LIPREADER_LANDMARKER") as err:
        landmarker_path()
    assert "assets fetch" not in str(err.value)
    monkeypatch.setenv(assets.ENV_VAR, str(tmp_path))
    with pytest.raises(AssetError, match="is a folder, not a file: set LIPREADER_LANDMARKER"):
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
