"""Atomic writes: a failure while writing leaves the previous file intact and no temporary behind."""

import os

import numpy as np
import pytest

from constellations import io


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "out.json"
    io.write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text('{"a": 2, "half')
            raise RuntimeError("crash mid-write")
    assert target.read_text().strip().endswith("}") and '"a": 1' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_json_npz_roundtrip(tmp_path):
    io.write_json(tmp_path / "c.json", {"x": np.float64(1.5), "v": np.arange(3)})
    assert (tmp_path / "c.json").read_text().count("1.5") == 1
    io.save_npz(tmp_path / "m.npz", a=np.arange(4))
    assert np.array_equal(np.load(tmp_path / "m.npz")["a"], np.arange(4))


def test_written_files_get_the_umask_mode_not_mkstemps_private_one(tmp_path):
    """Results are shared: an atomically written file has the mode open() would give (0666 & ~umask), not 0600."""
    import os
    import stat

    mask = os.umask(0o022)
    os.umask(mask)
    written = io.write_text(tmp_path / "a.md", "x")
    plain = tmp_path / "b.md"
    plain.write_text("x")
    assert stat.S_IMODE(written.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o666 & ~mask


def test_the_file_is_synced_before_the_rename_and_its_folder_after(tmp_path, monkeypatch):
    """Durability: fsync(temporary file) happens before os.replace, fsync(folder) after it."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.path.realpath(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "out.txt"
    io.write_text(target, "hello")
    kinds = [kind for kind, _ in events]
    assert kinds == ["fsync", "replace", "fsync"], events
    assert os.path.basename(events[0][1]).startswith(".out.txt.")
    assert events[2][1] == os.path.realpath(tmp_path)


def test_remove_temporaries_deletes_only_leftover_temporaries(tmp_path):
    (tmp_path / ".ckpt-000000003.npz.abc123.npz").write_bytes(b"half")
    (tmp_path / ".LAST.xyz").write_text("x")
    keep = [tmp_path / "ckpt-000000002.npz", tmp_path / "LAST", tmp_path / ".hidden"]
    for p in keep:
        p.write_text("keep")
    gone = io.remove_temporaries(tmp_path, "ckpt-*.npz")
    assert [p.name for p in gone] == [".ckpt-000000003.npz.abc123.npz"]
    assert all(p.exists() for p in keep) and (tmp_path / ".LAST.xyz").exists()
