"""Training runs that lose nothing (issue 16.3): kills, signals, changed configs and damaged checkpoints.

Every run is BV's micro variant ("mu/4") on 16-pixel shapes for 8 steps, so the in-process runs
share one compiled step; the SIGKILL test trains in child processes, killed with SIGKILL.
"""

import importlib
import json
import os
import queue
import random
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from constellations.siglip import checkpoint as ckpt
from constellations.siglip.__main__ import main as cli
from constellations.siglip.config import merge
from siglip_runs import leaves_equal, tiny_config
from constellations.siglip.train import ConfigChanged, TrainingInterrupted, check_resume_config, train

train_module = importlib.import_module("constellations.siglip.train")   # the package re-exports train()
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 8


def tiny(**updates):
    return tiny_config(dict(total_steps=STEPS, checkpoint_steps=1), updates)


def losses(workdir):
    return [json.loads(line)["loss"] for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def temporaries(workdir):
    return sorted(p.name for p in ckpt.checkpoint_dir(workdir).glob(".*"))


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted run every interrupted one must equal, bit for bit."""
    workdir = tmp_path_factory.mktemp("straight")
    return train(tiny(), workdir)


def assert_same_run(workdir, straight):
    """Parameters, optimizer state (every checkpoint array) and logged losses equal the straight run's."""
    _, want = ckpt.read_checkpoint(straight.workdir)
    _, got = ckpt.read_checkpoint(workdir)
    assert want.keys() == got.keys() and all(np.array_equal(want[k], got[k]) for k in want)
    assert losses(workdir) == losses(straight.workdir) and len(losses(workdir)) == STEPS


# ----------------------------------------------------------------------------------------------
# SIGKILL at random points, one of them in the middle of a checkpoint write.

CHILD = textwrap.dedent(r"""
    import io, json, sys, time
    import jax
    jax.config.update("jax_enable_x64", True)      # as the test process (conftest.py)
    import numpy as np
    from constellations.siglip.config import default_config, merge
    from constellations.siglip.train import train

    cfg, workdir, stall_at, pause = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    savez, calls = np.savez_compressed, [0]

    def slow_savez(path, **arrays):   # io.save_npz's writer: write half, stall (to be killed), or pause
        calls[0] += 1
        buf = io.BytesIO()
        savez(buf, **arrays)
        data = buf.getvalue()
        with open(path, "wb") as f:
            f.write(data[: len(data) // 2])
            f.flush()
            if calls[0] == stall_at:
                print("MIDWRITE", flush=True)
                time.sleep(600)
            time.sleep(pause)
            f.write(data[len(data) // 2:])
        print("SAVED", flush=True)

    np.savez_compressed = slow_savez
    train(merge(default_config(), cfg), workdir)
    print("DONE", flush=True)
""")


def _spawn(cfg, workdir, *, stall_at=0, pause=0.0):
    # The children share a persistent compilation cache: the second one loads the first one's step.
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
               JAX_COMPILATION_CACHE_DIR=str(workdir.parent / "jax-cache"),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    env.pop("XLA_FLAGS", None)
    log = open(workdir.parent / f"{workdir.name}-child-{stall_at}.log", "w")
    proc = subprocess.Popen([sys.executable, "-c", CHILD, cfg.to_json(), str(workdir), str(stall_at), str(pause)],
                            env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    proc.log = log
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.strip()) for line in proc.stdout], daemon=True).start()
    return proc, lines


def _wait_for(proc, lines, marker, timeout=300):
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            proc.kill()
            proc.wait()
            with open(proc.log.name) as f:
                raise AssertionError(f"child printed no {marker} in {timeout} s: {f.read()[-3000:]}") from None
        if line == marker:
            return
        if line == "DONE":
            raise AssertionError(f"child finished before {marker}")


def _kill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    proc.log.close()


def test_sigkill_at_random_points_then_resume_is_bit_identical(tmp_path, straight):
    """Kill -9 mid-write of checkpoint k (random), then kill -9 a resumed run at a random moment, then resume
    to the end: every checkpoint array and every logged loss equal the uninterrupted run's, LAST never names
    a partial file, and the half-written temporary is removed when the next run starts."""
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    cfg, workdir = tiny(), tmp_path / "killed"
    k = rng.randint(2, STEPS - 2)
    proc, lines = _spawn(cfg, workdir, stall_at=k)
    _wait_for(proc, lines, "MIDWRITE")
    _kill(proc)
    assert ckpt.latest_checkpoint(workdir).name == f"ckpt-{k - 1:09d}.npz", seed
    left = temporaries(workdir)
    assert any(name.startswith(f".ckpt-{k:09d}.npz.") for name in left), (seed, left)

    proc, lines = _spawn(cfg, workdir, pause=0.2)   # each write ~0.2 s: a random kill often lands mid-write
    _wait_for(proc, lines, "SAVED")
    delay = rng.uniform(0.0, 1.0)
    try:
        _wait_for(proc, lines, "DONE", timeout=delay)
    except AssertionError:
        pass
    _kill(proc)
    assert not set(left) & set(temporaries(workdir)), seed       # the first kill's leftovers are gone

    resumed = train(cfg, workdir)
    assert resumed.step == STEPS and leaves_equal(resumed.params, straight.params), seed
    assert_same_run(workdir, straight)
    assert temporaries(workdir) == [], seed


# ----------------------------------------------------------------------------------------------
# SIGINT / SIGTERM: save at the current step, stop cleanly.


def _signal_after(monkeypatch, signum, n, times=1):
    """Make the process send itself ``signum`` (``times`` times) right after its n-th training step."""
    real, calls = train_module.train_steps, []

    def stepping(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == n:
            for _ in range(times):
                os.kill(os.getpid(), signum)
        return out

    monkeypatch.setattr(train_module, "train_steps", stepping)


def test_sigint_saves_the_current_step_and_resume_is_bit_identical(tmp_path, monkeypatch, straight):
    """Ctrl-C after step 3 (checkpoints every 5): TrainingInterrupted at step 3 with ckpt-3 written, the
    previous handler back in place; training again finishes equal to the uninterrupted run."""
    cfg, workdir = tiny(checkpoint_steps=5), tmp_path / "sigint"
    before = signal.getsignal(signal.SIGINT)
    _signal_after(monkeypatch, signal.SIGINT, 3)
    with pytest.raises(TrainingInterrupted) as stop:
        train(cfg, workdir)
    assert stop.value.step == 3 and stop.value.signum == signal.SIGINT
    assert ckpt.latest_checkpoint(workdir).name == "ckpt-000000003.npz"
    assert signal.getsignal(signal.SIGINT) is before
    monkeypatch.undo()
    train(cfg, workdir)
    assert_same_run(workdir, straight)


def test_a_second_sigint_aborts_without_saving(tmp_path, monkeypatch, straight):
    """Two Ctrl-C: the second goes to Python's own handler (KeyboardInterrupt at once, no checkpoint), and the
    handlers are restored."""
    cfg, workdir = tiny(checkpoint_steps=5), tmp_path / "abort"
    before = signal.getsignal(signal.SIGINT)
    _signal_after(monkeypatch, signal.SIGINT, 2, times=2)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, workdir)
    assert ckpt.latest_checkpoint(workdir) is None and signal.getsignal(signal.SIGINT) is before


def test_sigterm_through_the_cli_exits_143_with_a_checkpoint(tmp_path, monkeypatch, capsys, straight):
    """SIGTERM (a scheduler's preemption) after step 2: the CLI saves ckpt-2 and exits with 128 + 15; the same
    command then resumes and finishes equal to the uninterrupted run."""
    cfg_file, workdir = tmp_path / "cfg.py", tmp_path / "sigterm"
    cfg_file.write_text("import json\nfrom constellations.siglip.config import Config\n"
                        f"def get_config(arg=None):\n    return Config(json.loads({tiny().to_json()!r}))\n")
    command = ["train", "--config", str(cfg_file), "--workdir", str(workdir)]
    _signal_after(monkeypatch, signal.SIGTERM, 2)
    assert cli(command) == 128 + signal.SIGTERM
    assert "SIGTERM" in capsys.readouterr().err
    assert ckpt.latest_checkpoint(workdir).name == "ckpt-000000002.npz"
    monkeypatch.undo()
    assert cli(command) == 0
    assert_same_run(workdir, straight)


# ----------------------------------------------------------------------------------------------
# A changed config.


def test_changed_config_is_refused_unless_allowed(tmp_path, capsys):
    """Resuming with optim.lr and seed changed raises ConfigChanged naming both (CLI: exit 2) and leaves
    config.json and the checkpoints as they were; total_steps extended and log/eval fields changed are
    accepted; total_steps below the restored step is refused; allow_config_change accepts a changed
    seed with a warning and records the new config (in config.json and the next checkpoint)."""
    cfg, workdir = tiny(), tmp_path / "run"
    train(cfg, workdir, stop_at_step=2)
    recorded = (workdir / "config.json").read_bytes()
    changed = merge(cfg, {"optim": {"lr": 5e-3}, "seed": 7})
    with pytest.raises(ConfigChanged, match=r"optim\.lr: 0\.001 -> 0\.005, seed: 0 -> 7"):
        train(changed, workdir)
    cfg_file = tmp_path / "cfg.py"
    cfg_file.write_text("import json\nfrom constellations.siglip.config import Config\n"
                        f"def get_config(arg=None):\n    return Config(json.loads({cfg.to_json()!r}))\n")
    command = ["train", "--config", str(cfg_file), "--workdir", str(workdir), "--set", "optim.lr=5e-3"]
    assert cli(command) == 2 and "--allow-config-change" in capsys.readouterr().err
    with pytest.raises(ConfigChanged, match="total_steps: 8 -> 1"):
        train(merge(cfg, {"total_steps": 1}), workdir)
    assert (workdir / "config.json").read_bytes() == recorded
    assert ckpt.latest_checkpoint(workdir).name == "ckpt-000000002.npz"

    longer = merge(cfg, {"total_steps": STEPS + 2, "log_steps": 2, "eval": {"num_examples": 16}})
    assert train(longer, workdir, stop_at_step=3).step == 3
    assert json.loads((workdir / "config.json").read_text())["total_steps"] == STEPS + 2

    reseeded = merge(longer, {"seed": 7})   # compiles as `longer` (the seed only changes the batches)
    with pytest.warns(UserWarning, match="seed: 0 -> 7"):
        assert train(reseeded, workdir, stop_at_step=4, allow_config_change=True).step == 4
    assert json.loads((workdir / "config.json").read_text())["seed"] == 7
    assert ckpt.read_header(workdir)["config"]["seed"] == 7


def test_which_config_fields_a_resume_may_change():
    """The RESUMABLE_FIELDS rule without training: log/checkpoint/eval fields and a longer run pass, a field
    that an older checkpoint lacks counts as its default, anything else is refused."""
    cfg = tiny()
    saved = json.loads(cfg.to_json())
    del saved["loss"]["tile"]                               # written before loss.tile existed
    ok = merge(cfg, {"total_steps": 20, "log_steps": 5, "checkpoint_steps": 3, "keep_checkpoints": 4,
                     "progress": True, "eval": {"every_steps": 2, "geometry": False}})
    check_resume_config(saved, ok, 4, allow=False, where="run")
    for change in ({"batch_size": 32}, {"model": {"image_variant": "mu/8"}}, {"loss": {"tile": 8}},
                   {"data": {"max_len": 9}}, {"total_steps": 3}):
        with pytest.raises(ConfigChanged):
            check_resume_config(saved, merge(cfg, change), 4, allow=False, where="run")


# ----------------------------------------------------------------------------------------------
# Damaged checkpoints.


def test_every_byte_flip_that_changes_a_value_is_detected(tmp_path, straight):
    """Flip one random bit in each of 300 bytes across a checkpoint (150 anywhere, 150 in its last 4 KiB,
    where the zip directory, header and digest sit): each damaged file either raises CorruptCheckpoint
    or reads back exactly the saved header and arrays (the flip hit bytes that hold no value, e.g. a
    zip timestamp or the "version made by" field)."""
    path = ckpt.latest_checkpoint(straight.workdir)
    header, arrays = ckpt.read_checkpoint(path)
    data = path.read_bytes()
    rng = np.random.default_rng(0)
    tail = max(len(data) - 4096, 0)
    positions = sorted(set(rng.integers(0, len(data), 150).tolist()) | set(rng.integers(tail, len(data), 150).tolist()))
    damaged, detected = tmp_path / "ckpt-000000001.npz", 0
    for pos in positions:
        flipped = bytearray(data)
        flipped[pos] ^= 1 << int(rng.integers(8))
        damaged.write_bytes(bytes(flipped))
        try:
            got_header, got = ckpt.read_checkpoint(damaged)
        except ckpt.CorruptCheckpoint:
            detected += 1
            continue
        assert got_header == header and got.keys() == arrays.keys(), pos
        assert all(np.array_equal(got[k], arrays[k]) and got[k].dtype == arrays[k].dtype for k in arrays), pos
    assert detected >= len(positions) // 2, (detected, len(positions))   # the sweep is not vacuous


def test_a_corrupt_newest_checkpoint_falls_back_to_the_newest_intact_one(tmp_path, straight):
    """The newest checkpoint damaged: the run warns naming it, renames it *.corrupt, resumes from the one
    before and still equals the uninterrupted run; with every checkpoint damaged it stops and says so."""
    cfg, workdir = tiny(), tmp_path / "run"
    train(cfg, workdir, stop_at_step=4)
    newest = ckpt.latest_checkpoint(workdir)
    data = bytearray(newest.read_bytes())
    data[len(data) // 3] ^= 0x10
    newest.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match=r"resuming from .*ckpt-000000003\.npz.*ckpt-000000004\.npz is corrupt"):
        train(cfg, workdir)
    assert (ckpt.checkpoint_dir(workdir) / "ckpt-000000004.npz.corrupt").is_file()
    assert_same_run(workdir, straight)

    for p in ckpt.checkpoint_dir(workdir).glob("ckpt-*.npz"):
        p.write_bytes(p.read_bytes()[:100])
    recorded = (workdir / "config.json").read_bytes()
    with pytest.raises(ckpt.CorruptCheckpoint, match="no intact checkpoint"):
        train(cfg, workdir)
    assert (workdir / "config.json").read_bytes() == recorded


@pytest.mark.parametrize("override,message", [
    ("optim.lr=nan", "optim.lr must be a finite real"),
    ("optim.lr=fast", "optim.lr must be a finite real"),
    ("optim.lr=0", "optim.lr must be > 0"),
    ("optim.b2=1.5", "optim.b2 must be < 1"),
    ("optim.b1=-0.1", "optim.b1 must be >= 0"),
    ("optim.grad_clip_norm=0", "optim.grad_clip_norm"),
    ("optim.eps=0", "optim.eps must be > 0"),
    ("optim.warmup_steps=-3", "optim.warmup_steps"),
    ("optim.weight_decay=inf", "optim.weight_decay must be a finite real"),
    ("loss.temperature_init=-1", "loss.temperature_init must be > 0"),
    ("seed=-2", "seed must be an integer"),
])
def test_bad_config_values_are_refused_before_training(tmp_path, capsys, override, message):
    """Issue 16.1: a bad --set value is one error line naming the field (exit 2), not a traceback or a run that
    cannot learn (grad_clip_norm=0 scaled every gradient to zero)."""
    from constellations.siglip.__main__ import main

    cfg = Path(__file__).resolve().parents[1] / "experiments" / "siglip" / "shapes_tiny.py"
    assert main(["train", "--config", str(cfg), "--workdir", str(tmp_path / "run"), "--set", override]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "run" / "config.json").exists()


def test_unwritable_outputs_are_refused_before_the_work(tmp_path, capsys):
    from constellations.siglip.__main__ import main

    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["eval", "--workdir", str(tmp_path), "--json", str(blocker / "out.json")]) == 2
    assert "--json" in capsys.readouterr().err
    assert main(["embed", "--workdir", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
