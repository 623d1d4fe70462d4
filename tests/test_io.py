"""Atomic writes: a failure while writing leaves the previous file intact and no temporary behind."""

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
