"""Event files: written by faery, read back by spikefab (and by aedat / evt3) identically;
bad files give one clear error naming the file."""

import faery
import numpy as np
import pytest

from spikefab.host.events import EVENTS_DTYPE, EventFileError, open_recording, write_recording
from spikefab.host.synthetic import DIRECTIONS, SCENES, moving_bar, moving_shapes

SEED = 11


def random_events(n=20000, width=160, height=120, seed=SEED):
    print(f"seed {seed}")
    rng = np.random.default_rng(seed)
    events = np.zeros(n, EVENTS_DTYPE)
    events["t"] = np.sort(rng.integers(5_000, 3_000_000, n))
    events["x"], events["y"] = rng.integers(0, width, n), rng.integers(0, height, n)
    events["on"] = rng.random(n) < 0.5
    return events


@pytest.mark.parametrize("suffix", [".aedat4", ".raw", ".dat", ".es", ".csv", ".npy"])
def test_written_files_read_back_identically(tmp_path, suffix):
    events = random_events()
    path = write_recording(tmp_path / f"rec{suffix}", events, (160, 120))
    rec = open_recording(path)
    assert (rec.width, rec.height) == (160, 120)
    chunks = list(rec.chunks())
    assert len(chunks) >= 1
    expected = events.copy()
    if suffix == ".es":        # Event Stream has no t0 field: times start at the first event
        expected["t"] -= events["t"][0]
    np.testing.assert_array_equal(np.concatenate(chunks), expected)


def test_evt2_written_by_faery_reads_back(tmp_path):
    events = random_events(5000)
    array = np.zeros(len(events), faery.EVENTS_DTYPE)
    for name in ("t", "x", "y", "on"):
        array[name] = events[name]
    path = tmp_path / "rec.raw"
    faery.events_stream_from_array(array, dimensions=(160, 120)).to_file(
        path, version="evt2", zero_t0=False)
    assert b"evt 2" in path.read_bytes()[:100].lower()
    np.testing.assert_array_equal(open_recording(path).read(), events)


def test_aedat_library_reads_what_we_read(tmp_path):
    import aedat
    events = random_events()
    path = write_recording(tmp_path / "rec.aedat4", events, (160, 120))
    theirs = np.concatenate([p["events"] for p in aedat.Decoder(path) if "events" in p])
    ours = open_recording(path).read()
    np.testing.assert_array_equal(ours["t"], theirs["t"])
    np.testing.assert_array_equal(ours["x"], theirs["x"])
    np.testing.assert_array_equal(ours["y"], theirs["y"])
    np.testing.assert_array_equal(ours["on"], theirs["on"])


def test_evt3_library_reads_what_we_read(tmp_path):
    import evt3
    events = random_events()
    path = write_recording(tmp_path / "rec.raw", events, (160, 120))
    theirs = evt3.decode_file(str(path))
    ours = open_recording(path).read()
    assert (theirs.sensor_width, theirs.sensor_height) == (160, 120)
    np.testing.assert_array_equal(ours["x"], theirs.x)
    np.testing.assert_array_equal(ours["y"], theirs.y)
    np.testing.assert_array_equal(ours["on"], theirs.polarity.astype(bool))
    # evt3 counts time from the start of the event data, faery from the header's t0 = 0.
    np.testing.assert_array_equal(ours["t"] - ours["t"][0],
                                  theirs.timestamp.astype(np.int64) - int(theirs.timestamp[0]))


def test_large_file_streams_in_several_chunks(tmp_path):
    events = random_events(600_000, seed=SEED + 1)
    path = write_recording(tmp_path / "big.npy", events, (160, 120))
    rec = open_recording(path)
    sizes = [len(c) for c in rec.chunks()]
    assert len(sizes) > 1 and max(sizes) < len(events) and sum(sizes) == len(events)


def bad(path, match):
    with pytest.raises(EventFileError, match=match) as info:
        rec = open_recording(path)
        for _ in rec.chunks():
            pass
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    return message


def test_truncated_aedat4(tmp_path):
    path = write_recording(tmp_path / "rec.aedat4", random_events(), (160, 120))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    bad(path, "truncated or corrupt AEDAT4")


def test_garbage_aedat4(tmp_path):
    path = tmp_path / "rec.aedat4"
    path.write_bytes(b"not an event file at all" * 20)
    bad(path, "cannot read as AEDAT4")


def test_evt_without_header(tmp_path):
    path = tmp_path / "rec.raw"
    path.write_bytes(bytes(range(1, 200)) * 10)
    bad(path, "no '%' header")


def test_truncated_evt3(tmp_path):
    path = write_recording(tmp_path / "rec.raw", random_events(), (160, 120))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) - 1])
    bad(path, "truncated EVT file")


def test_unknown_extension_missing_and_empty_files(tmp_path):
    (tmp_path / "rec.mp4").write_bytes(b"x")
    bad(tmp_path / "rec.mp4", "unknown recording format '.mp4'")
    bad(tmp_path / "missing.aedat4", "no such file")
    (tmp_path / "empty.aedat4").write_bytes(b"")
    bad(tmp_path / "empty.aedat4", "empty file")


def test_wrong_dimensions_are_caught(tmp_path):
    path = write_recording(tmp_path / "rec.npy", random_events(), (160, 120))
    with pytest.raises(EventFileError, match="outside the 100x120 sensor"):
        list(open_recording(path, dimensions=(100, 120)).chunks())


def test_time_running_backwards_is_caught(tmp_path):
    events = random_events(1000)
    events["t"][500] = 1
    np.save(tmp_path / "rec.npy", events)
    bad(tmp_path / "rec.npy", "time runs backwards at event 500")


def test_npy_needs_event_fields(tmp_path):
    np.save(tmp_path / "rec.npy", np.zeros((10, 4)))
    bad(tmp_path / "rec.npy", "structured array")


def test_synthetic_camera_is_deterministic_and_plausible(tmp_path):
    a = moving_shapes(48, 32, duration_us=500_000, seed=3)
    b = moving_shapes(48, 32, duration_us=500_000, seed=3)
    np.testing.assert_array_equal(a, b)
    assert (np.diff(a["t"].astype(np.int64)) >= 0).all()
    assert a["x"].max() < 48 and a["y"].max() < 32
    on, off = int(a["on"].sum()), int((~a["on"]).sum())
    assert on > 500 and abs(on - off) < 0.1 * (on + off)    # every edge that appears leaves
    # Each scene segment has events: the shapes really move across the sensor.
    segment = a["t"] * len(SCENES) // 500_000
    assert set(np.unique(segment)) == set(range(len(SCENES)))
    path = write_recording(tmp_path / "s.aedat4", a, (48, 32))
    np.testing.assert_array_equal(open_recording(path).read(), a)


@pytest.mark.parametrize("direction", list(DIRECTIONS) + [45.0])
def test_synthetic_bar_moves_in_its_direction(direction, tmp_path):
    """ON events lead (where the bar arrives), OFF events trail; both travel along the motion at
    the bar's speed; noise only within the clip; the file reads back unchanged."""
    speed, duration = 1.5, 12_000
    events = moving_bar(32, 24, direction=direction, speed=speed, duration_us=duration,
                        start=3.0, thickness=4.0, noise_hz=20.0, t0_us=50_000, seed=5)
    np.testing.assert_array_equal(events, moving_bar(
        32, 24, direction=direction, speed=speed, duration_us=duration, start=3.0,
        thickness=4.0, noise_hz=20.0, t0_us=50_000, seed=5))
    t = events["t"].astype(np.int64)
    assert t.min() >= 50_000 and t.max() < 50_000 + duration and (np.diff(t) >= 0).all()
    angle = np.deg2rad(DIRECTIONS.get(direction, direction))
    along = events["x"] * np.cos(angle) + events["y"] * np.sin(angle)
    along -= min(0, 31 * np.cos(angle)) + min(0, 23 * np.sin(angle))    # from the trailing edge
    early, late = t < 50_000 + duration / 3, t >= 50_000 + 2 * duration / 3
    for polarity in (True, False):
        this = events["on"] == polarity
        travelled = np.median(along[this & late]) - np.median(along[this & early])
        assert abs(travelled - speed * 8) < 2.5, (polarity, travelled)
    assert np.median(along[events["on"] & early]) > np.median(along[~events["on"] & early])
    path = write_recording(tmp_path / "bar.aedat4", events, (32, 24))
    np.testing.assert_array_equal(open_recording(path).read(), events)
    with pytest.raises(ValueError, match="unknown direction 'sideways'"):
        moving_bar(8, 8, direction="sideways", speed=1.0, duration_us=1000)


def nmnist_record(x, y, on, t):
    return bytes([x, y, (on << 7) | (t >> 16), (t >> 8) & 0xFF, t & 0xFF])


def test_nmnist_bin_records_and_time_overflow(tmp_path):
    """The N-MNIST layout by hand: x, y, polarity bit, 23-bit time; y = 240 adds 2**13 µs.

    (The same reader agreed with `tonic.io.read_mnist_file` on a random 3000-record file with
    overflow records; tonic is not a test dependency, see docs/host.md.)"""
    path = tmp_path / "digit.bin"
    path.write_bytes(nmnist_record(3, 33, 1, 0x7FFFF0) + nmnist_record(0, 0, 0, 0x12345)
                     + nmnist_record(0, 240, 0, 0) + nmnist_record(33, 1, 0, 0x12346))
    rec = open_recording(path, dimensions=(34, 34))
    assert rec.format == "N-MNIST"
    with pytest.raises(EventFileError, match="time runs backwards at event 1"):
        rec.read()
    path.write_bytes(nmnist_record(3, 33, 1, 0x12344) + nmnist_record(0, 0, 0, 0x12345)
                     + nmnist_record(0, 240, 0, 0) + nmnist_record(33, 1, 0, 0x12346))
    events = open_recording(path, dimensions=(34, 34)).read()
    assert events.tolist() == [(0x12344, 3, 33, True), (0x12345, 0, 0, False),
                               (0x12346 + (1 << 13), 33, 1, False)]


def test_truncated_nmnist_bin(tmp_path):
    path = tmp_path / "digit.bin"
    path.write_bytes(nmnist_record(1, 2, 1, 100) + b"\x01\x02")
    bad(path, "truncated N-MNIST file: 7 bytes")
