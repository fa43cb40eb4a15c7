"""Real camera recordings as a new user would try them, crafted files that lie about their size,
EVT 2.1 and ATIS Event Stream files written here from the formats' specifications, and the
fitting of any sensor to the bundled network's input."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spikefab.cli import main
from spikefab.host.bundled import ORIENTATIONS, load_network_spec
from spikefab.host.events import EVENTS_DTYPE, EventFileError, open_recording, write_recording
from spikefab.host.fit import Grid, fit_window

SEED = 21
ROOT = Path(__file__).resolve().parent.parent


def _events_dir() -> Path | None:
    """`../shared/data/events` beside the checkout (or beside its parent: worktrees)."""
    if os.environ.get("SPIKEFAB_EVENTS"):
        return Path(os.environ["SPIKEFAB_EVENTS"])
    for base in (ROOT.parent, ROOT.parent.parent):
        if (base / "shared" / "data" / "events").is_dir():
            return base / "shared" / "data" / "events"
    return None


EVENTS = _events_dir()
real = pytest.mark.skipif(EVENTS is None, reason="the real recordings (../shared/data/events) "
                          "are not beside this checkout; set SPIKEFAB_EVENTS to their folder")

# file -> format, width, height, where the size comes from, events (the folder's README)
REAL = {"davis346.aedat4": ("AEDAT4", 346, 260, "header", 78_830),
        "evt2.raw": ("EVT 2.0", 640, 480, "events", 521_252),
        "evt3.raw": ("EVT 3.0", 1280, 720, "header", 1_218_618),
        "gen4.dat": ("DAT", 1280, 720, "header", 1_218_618),
        "dvs.es": ("ES", 320, 240, "header", 473_225)}


def one_line_error(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


# Real recordings --------------------------------------------------------------------------------

@real
@pytest.mark.parametrize("name", list(REAL))
def test_real_recordings_open_with_their_sensor_size(name):
    fmt, width, height, source, n = REAL[name]
    rec = open_recording(EVENTS / name)
    assert (rec.format, rec.width, rec.height, rec.size_source) == (fmt, width, height, source)
    events = rec.read()
    assert len(events) == n and rec.dropped == {}
    assert events["x"].max() < width and events["y"].max() < height


@real
def test_evt2_without_geometry_says_so_and_takes_dimensions():
    rec = open_recording(EVENTS / "evt2.raw")
    assert "inferred from the events" in rec.describe() and "--dimensions" in rec.describe()
    rec = open_recording(EVENTS / "evt2.raw", dimensions=(640, 480))
    assert (rec.width, rec.height, rec.size_source) == (640, 480, "dimensions")
    with pytest.raises(EventFileError, match="width=600"):      # faery checks it itself
        open_recording(EVENTS / "evt2.raw", dimensions=(600, 480)).read()


@real
@pytest.mark.parametrize("suffix", [".raw", ".dat", ".aedat4", ".es"])
def test_write_recording_round_trips_davis346_exactly_and_small(tmp_path, suffix):
    """Camera times are µs since 1970: EVT/DAT files keep them in `% t0`, not in every word."""
    events = open_recording(EVENTS / "davis346.aedat4").read()
    path = write_recording(tmp_path / f"copy{suffix}", events, (346, 260))
    back = open_recording(path)
    assert (back.width, back.height) == (346, 260)
    expected = events.copy()
    if suffix == ".es":                 # no t0 field in Event Stream: times start at 0
        expected["t"] -= events["t"][0]
    np.testing.assert_array_equal(back.read(), expected)
    assert path.stat().st_size < 12 * len(events), f"{path.stat().st_size} bytes"


@real
@pytest.mark.parametrize("name", ["davis346.aedat4", "evt2.raw", "dvs.es"])
def test_run_with_default_options_fits_every_camera(name, tmp_path, capsys):
    fmt, width, height, _, _ = REAL[name]
    assert main(["run", "-q", str(EVENTS / name), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    p = min(width // 8, height // 8)
    crop = f"crop {8 * p}x{8 * p}+{(width - 8 * p) // 2}+{(height - 8 * p) // 2}"
    assert f"{crop}, pool {p}x{p}" in out and "fitted to the network's" in out
    assert (tmp_path / "run.png").read_bytes()[:4] == b"\x89PNG"


# Files that claim a huge sensor: memory follows the events -------------------------------------

def _crafted(tmp_path) -> dict:
    """path -> (extra `run` options, the error expected, None if the run must succeed)."""
    files = {}
    es = tmp_path / "header_only.es"
    es.write_bytes(bytes.fromhex("4576656e742053747265616d02000001ffffffff"))
    files[es] = [], "no events"
    evt3 = tmp_path / "header_only.raw"
    evt3.write_bytes(b"% evt 3.0\n% format EVT3;height=65535;width=65535\n% end\n")
    assert len(evt3.read_bytes()) == 55
    files[evt3] = [], "no events"
    npy = tmp_path / "corner.npy"
    one = np.zeros(1, EVENTS_DTYPE)
    one["x"] = one["y"] = 65535
    np.save(npy, one)
    files[npy] = [], None                  # runs: a 65536 x 65536 sensor, one event
    rng = np.random.default_rng(SEED)
    spread = np.zeros(50_000, EVENTS_DTYPE)
    spread["t"] = np.sort(rng.integers(0, 500_000, len(spread)))
    spread["x"], spread["y"] = rng.integers(0, 65535, (2, len(spread)))
    np.save(tmp_path / "spread.npy", spread)
    files[tmp_path / "spread.npy"] = ["--denoise", "5000", "--dimensions", "65535x65535"], None
    noise = tmp_path / "noise.es"
    noise.write_bytes(es.read_bytes() + rng.integers(0, 256, 300_000, dtype=np.uint8).tobytes())
    files[noise] = [], "cannot read as ES"
    return files


def test_crafted_headers_do_not_allocate_the_sensor(tmp_path):
    """Each run under a 1 GiB address-space limit: 32 GiB of per-pixel state would fail."""
    print(f"seed {SEED}")
    script = ("import resource, sys\n"
              "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
              "from spikefab.cli import main\n"
              "sys.exit(main(['run', '-q', '--out'] + sys.argv[1:]))\n")
    for path, (options, error) in _crafted(tmp_path).items():
        run = subprocess.run([sys.executable, "-c", script, str(tmp_path / "out"), str(path),
                              *options], capture_output=True, text=True, timeout=300)
        assert "Traceback" not in run.stderr and "MemoryError" not in run.stderr, run.stderr
        if error is None:
            assert run.returncode == 0, run.stderr
        else:
            assert run.returncode == 2 and error in run.stderr, run.stderr
            assert len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_npy_that_is_not_npy(tmp_path, capsys):
    path = tmp_path / "rec.npy"
    path.write_bytes(b"t,x,y,on\n1,2,3,1\n")
    err = one_line_error(["run", str(path), "--out", str(tmp_path)], capsys)
    assert "not an NPY file" in err and "pickle" not in err


# User networks: one line ------------------------------------------------------------------------

@pytest.mark.parametrize("source, message", [
    ("def network(:\n    pass\n", "broken.py:1: syntax error"),
    ("import numpy\n\ndef network():\n    return numpy.zeros(3)[7]\n",
     "broken.py:4: network() raised IndexError: index 7 is out of bounds"),
    ("raise RuntimeError('no\\nnetwork today')\n",
     "broken.py:1: importing it raised RuntimeError: no network today"),
])
def test_network_file_errors_are_one_line(tmp_path, capsys, source, message):
    net = tmp_path / "broken.py"
    net.write_text(source)
    err = one_line_error(["run", "--network", str(net), "--out", str(tmp_path)], capsys)
    assert message in err


# EVT 2.1, written here from Prophesee's format description --------------------------------------

def evt21_file(path, events, size, *, t0=0, legacy=False, extra_words=()):
    """Write EVT 2.1: a TIME_HIGH word (type 0x8, time bits 33..6 in bits 59..32) whenever those
    bits change, then one CD word per run of events with the same time, polarity, row and
    32-pixel group: type 0x1 (ON) / 0x0 (OFF) in bits 63..60, time bits 5..0 in 59..54, the
    group's first x in 53..43, y in 42..32, bit i of bits 31..0 = an event at x + i."""
    words, high, i = [], None, 0
    t_rel = events["t"].astype(np.int64) - t0
    while i < len(events):
        t, y, on = int(t_rel[i]), int(events["y"][i]), bool(events["on"][i])
        if (t >> 6) != high:
            high = t >> 6
            words.append((0x8 << 60) | ((high & (1 << 28) - 1) << 32))
        base, valid = int(events["x"][i]) & ~31, 0
        while (i < len(events) and int(t_rel[i]) == t and int(events["y"][i]) == y
               and bool(events["on"][i]) == on and int(events["x"][i]) & ~31 == base):
            valid |= 1 << (int(events["x"][i]) - base)
            i += 1
        words.append((int(on) << 60) | ((t & 63) << 54) | (base << 43) | (y << 32) | valid)
    words += list(extra_words)
    array = np.array(words, dtype=np.uint64)
    if legacy:                              # IMX636: the 32-bit halves in the other order
        array = (array << np.uint64(32)) | (array >> np.uint64(32))
    options = ";endianness=legacy" if legacy else ""
    header = (f"% evt 2.1\n% format EVT21;height={size[1]};width={size[0]}{options}\n"
              f"% t0 {t0}\n% end\n")
    path.write_bytes(header.encode() + array.astype("<u8").tobytes())
    return path


def evt21_events(n=4000, size=(300, 200), seed=SEED):
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    events = np.zeros(n, EVENTS_DTYPE)
    events["t"] = np.sort(rng.integers(1_000_000, 1_000_000 + 60 * n, n))
    events["t"][: n // 4] = events["t"][0]          # many events at one time: vectors
    events["x"], events["y"] = rng.integers(0, size[0], n), rng.integers(0, size[1], n)
    events["y"][: n // 4] = 7
    events["on"] = rng.random(n) < 0.5
    order = np.lexsort((events["x"], events["on"], events["y"], events["t"]))
    events = events[order]
    same = np.r_[False, (np.diff(events["t"].astype(np.int64)) == 0)
                 & (np.diff(events["x"].astype(np.int64)) == 0)
                 & (np.diff(events["y"].astype(np.int64)) == 0)]
    return events[~same]                            # one event per pixel and time


@pytest.mark.parametrize("legacy", [False, True])
def test_evt21_reads_what_the_specification_says(tmp_path, legacy):
    events = evt21_events()
    trigger = (0xA << 60) | (5 << 54) | (1 << 40) | (1 << 32)
    path = evt21_file(tmp_path / "rec.raw", events, (300, 200), t0=999_000, legacy=legacy,
                      extra_words=[trigger])
    rec = open_recording(path)
    assert (rec.format, rec.width, rec.height) == ("EVT 2.1", 300, 200)
    np.testing.assert_array_equal(rec.read(), events)
    assert rec.dropped == {"EVT 2.1 trigger words": 1}


def test_evt21_time_high_wraps_after_2_34_us(tmp_path):
    events = np.zeros(3, EVENTS_DTYPE)
    events["t"] = [(1 << 34) - 70, (1 << 34) - 1, (1 << 34) + 5]
    events["x"] = [1, 40, 2]
    path = evt21_file(tmp_path / "wrap.raw", events, (64, 4))
    np.testing.assert_array_equal(open_recording(path).read()["t"], events["t"])


def test_evt21_reserved_word_type_is_corruption(tmp_path, capsys):
    path = evt21_file(tmp_path / "bad.raw", evt21_events(50), (300, 200),
                      extra_words=[0x3 << 60])
    with pytest.raises(EventFileError, match=r"corrupt EVT 2.1 file: word (\d+) \(byte "
                                             r"\d+ after the header\) has the reserved EVT 2.1 "
                                             r"type 0x3"):
        open_recording(path).read()
    # The run stops at the file, before any device: the port below does not exist.
    err = one_line_error(["run", str(path), "--device", "serial:///dev/ttyNOSUCH0",
                          "--out", str(tmp_path)], capsys)
    assert "corrupt EVT 2.1" in err


def test_evt21_runs(tmp_path, capsys):
    path = evt21_file(tmp_path / "rec.raw", evt21_events(), (300, 200))
    assert main(["run", "-q", str(path), "--out", str(tmp_path)]) == 0
    assert "EVT 2.1, 300x200" in capsys.readouterr().out


# ATIS Event Stream, written here from the Event Stream 2.0 specification ------------------------

def atis_es_file(path, events, exposure, size):
    """ES 2.0 ATIS: header `Event Stream`, version 2.0.0, type 0x02, width and height (16-bit
    little-endian); per event an overflow byte 0b111111xx per 63·xx µs of delay beyond 62, then
    byte 0 = delay (6 bits) << 2 | polarity << 1 | is_tc, x (2 bytes), y (2 bytes). The file's y
    counts from the bottom row."""
    out = bytearray(b"Event Stream" + bytes([2, 0, 0, 2]) + size[0].to_bytes(2, "little")
                    + size[1].to_bytes(2, "little"))
    previous = 0
    for e, tc in zip(events, exposure):
        delay = int(e["t"]) - previous
        previous = int(e["t"])
        while delay >= 63:
            k = min(3, delay // 63)
            out.append(0xFC | k)
            delay -= 63 * k
        out.append((delay << 2) | (int(e["on"]) << 1) | int(tc))
        out += int(e["x"]).to_bytes(2, "little")
        out += (size[1] - 1 - int(e["y"])).to_bytes(2, "little")
    path.write_bytes(bytes(out))
    return path


def test_atis_exposure_events_are_dropped_and_counted(tmp_path, capsys):
    rng = np.random.default_rng(SEED)
    print(f"seed {SEED}")
    n, size = 3000, (96, 64)
    events = np.zeros(n, EVENTS_DTYPE)
    events["t"] = np.sort(rng.integers(0, 2_000_000, n))
    events["x"], events["y"] = rng.integers(0, size[0], n), rng.integers(0, size[1], n)
    events["on"] = rng.random(n) < 0.5
    exposure = rng.random(n) < 0.3
    path = atis_es_file(tmp_path / "atis.es", events, exposure, size)
    rec = open_recording(path)
    assert (rec.format, rec.width, rec.height) == ("ES", 96, 64)
    np.testing.assert_array_equal(rec.read(), events[~exposure])    # y back to top-left
    assert rec.dropped == {"ATIS exposure": int(exposure.sum())}
    assert "y flipped" in rec.describe()
    assert main(["run", "-q", str(path), "--out", str(tmp_path)]) == 0
    assert f"the reader dropped {int(exposure.sum())} ATIS exposure" in capsys.readouterr().out


# Fitting any sensor to the network's input grid -------------------------------------------------

GRID = Grid(2, 8, 8)


@pytest.mark.parametrize("sensor, crop, pool", [
    ((346, 260), (45, 2, 256, 256), (32, 32)),
    ((640, 480), (80, 0, 480, 480), (60, 60)),
    ((1280, 720), (280, 0, 720, 720), (90, 90)),
    ((64, 64), (0, 0, 64, 64), (8, 8)),
    ((8, 9), (0, 0, 8, 8), (1, 1)),
])
def test_default_fit_is_a_centre_crop_and_square_pooling(sensor, crop, pool):
    got = fit_window(GRID, sensor)
    assert got[:2] == (crop, pool) and "fitted" in got[2]


def test_given_pool_or_crop_gets_the_other():
    assert fit_window(GRID, (346, 260), pool=(4, 4))[:2] == ((157, 114, 32, 32), (4, 4))
    assert fit_window(GRID, (346, 260), crop=(0, 0, 320, 240))[:2] == ((0, 0, 320, 240), (40, 30))
    # A partial last cell still counts: 60 pixels in cells of 8 are 8 cells.
    assert fit_window(GRID, (60, 60), pool=(8, 8))[:2] == ((0, 0, 60, 60), (8, 8))


def test_conflicting_options_name_values_that_fit():
    with pytest.raises(ValueError) as info:
        fit_window(GRID, (346, 260), crop=(0, 0, 100, 100), pool=(4, 4))
    message = str(info.value)
    assert "--crop 0,0,100,100 --pool 4x4 does not fit the network's input (2 x 8 x 8 cells)" \
        in message
    assert "--crop 157,114,32,32 --pool 4x4" in message            # keep the pool
    assert "--crop 0,0,100,100 --pool 13x13" in message            # keep the crop
    assert "--crop 45,2,256,256 --pool 32x32 (the default" in message
    with pytest.raises(ValueError, match="sensor is smaller than the network's input grid"):
        fit_window(GRID, (7, 100))
    with pytest.raises(ValueError, match="--pool 40x40 does not fit"):
        fit_window(GRID, (346, 260), pool=(40, 40))


def test_cli_conflicts_are_one_line(capsys, tmp_path):
    err = one_line_error(["run", "--pool", "4", "--crop", "0,0,64,64", "--out", str(tmp_path)],
                         capsys)
    assert "would: --crop 16,16,32,32 --pool 4x4; --crop 0,0,64,64 --pool 8x8" in err
    err = one_line_error(["run", "--polarity", "merge", "--out", str(tmp_path)], capsys)
    assert "2 channel(s) (split polarity), --polarity merge gives 1" in err


# The run picture --------------------------------------------------------------------------------

def test_run_picture_names_groups_input_image_and_legend_off_the_data(tmp_path):
    from spikefab.host.plots import run_figure
    spec = load_network_spec("bars")
    rng = np.random.default_rng(SEED)
    sizes = {"lines": 46, "orientation": 4}
    spikes = {n: np.stack([rng.integers(0, 500, 300), rng.integers(0, s, 300)], 1)
              for n, s in sizes.items()}
    image = rng.integers(0, 50, (2, 8, 8))
    fig = run_figure(rng.integers(0, 30, 500), spikes, sizes, 1000, image=image,
                     names=spec.names, groups=spec.groups, image_title="crop 64x64+0+0")
    fig.canvas.draw()
    by_label = {ax.get_ylabel(): ax for ax in fig.axes}
    orientation = by_label["orientation\nneuron"]
    assert [t.get_text() for t in orientation.get_yticklabels()] == list(ORIENTATIONS)
    lines = by_label["lines\n(neuron groups)"]
    assert [t.get_text() for t in lines.get_yticklabels()] == ["columns", "rows", "diagonals 45",
                                                             "diagonals 135"]
    assert sorted(round(ln.get_ydata()[0], 1) for ln in lines.get_lines()) == [7.5, 15.5, 30.5]
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 1 and shown[0].images[0].get_array().count() == 128
    legend = next(ax.get_legend() for ax in fig.axes if ax.get_legend())
    box = legend.get_window_extent()
    for ax in fig.axes:
        if ax.lines or ax.collections or ax.images:         # axes with data
            assert not box.overlaps(ax.get_window_extent()), ax.get_ylabel()
