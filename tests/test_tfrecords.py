"""TFRecord shards (TF-slim / Model Garden ImageNet features): the writer command, reading,
labels for 1000- and 1001-class heads, object boxes, seeded order and resume, file sharding,
one-line refusals; the folder manifest; tfds imagenet2012 with tfds' mock data."""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO_ROOT
from mobilenet_tf import data as data_lib
from mobilenet_tf.data import tfrecords
from mobilenet_tf.errors import InputError

WRITER = [sys.executable, "-m", "mobilenet_tf.write_tfrecords"]


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _jpeg(path, value, size=(24, 32)):
    image = np.zeros((*size, 3), np.uint8) + np.array(value, np.uint8)
    data = tf.io.encode_jpeg(image, quality=100).numpy()
    path.write_bytes(data)
    return data


def _example(encoded, label, boxes=(), filename=b""):
    feature = {
        tfrecords.ENCODED: tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded])),
        tfrecords.LABEL: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        tfrecords.FILENAME: tf.train.Feature(bytes_list=tf.train.BytesList(value=[filename])),
    }
    for i, key in enumerate(tfrecords.BBOX_KEYS):
        feature[f"image/object/bbox/{key}"] = tf.train.Feature(
            float_list=tf.train.FloatList(value=[b[i] for b in boxes]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _write(path, records):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record)


def _indexed_shards(directory, shards=4, per_shard=6, size=(16, 16)):
    """`shards` shards; example k (label k + 1) of shard j has label j * per_shard + k + 1, so a
    label names its shard. labels.txt names the shards * per_shard classes."""
    directory.mkdir(exist_ok=True)
    pixel = tf.io.encode_jpeg(np.zeros((*size, 3), np.uint8)).numpy()
    for j in range(shards):
        _write(directory / tfrecords.shard_name("train", j, shards),
               [_example(pixel, j * per_shard + k + 1) for k in range(per_shard)])
    (directory / "labels.txt").write_text("".join(f"{i}:c{i}\n" for i in range(1, shards * per_shard + 1)))
    return directory


@pytest.fixture
def photo_folder(tmp_path):
    """train/{a,b}, val/{a,b}: small JPEGs of distinct colours, plus a PNG and a text file."""
    root = tmp_path / "photos"
    for split, n in (("train", 4), ("val", 2)):
        for c, cls in enumerate(("a", "b")):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                _jpeg(root / split / cls / f"{i}.jpg", (40 * i, 200 * c, 17))
    tf.io.write_file(str(root / "train" / "b" / "p.png"), tf.io.encode_png(np.full((8, 8, 3), 9, np.uint8)))
    (root / "train" / "a" / "notes.txt").write_text("not an image")
    return root


def test_writer_command_and_reader_round_trip(photo_folder, tmp_path):
    out = tmp_path / "shards"
    result = subprocess.run(WRITER + [f"--images={photo_folder}", f"--output={out}",
                                      "--train_shards=3", "--validation_shards=2"],
                            capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, env=_env())
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last == (f"wrote 9 train examples in 3 shards (train-00000-of-00003 ...) and 4 validation "
                    f"examples in 2 shards (validation-00000-of-00002 ...) and labels.txt (2 classes, "
                    f"labels 1..2) to {out}; left out 1 file")
    assert "notes.txt: not an image file" in result.stderr
    assert sorted(os.listdir(out)) == ["labels.txt"] + [f"train-0000{i}-of-00003" for i in range(3)] + [
        f"validation-0000{i}-of-00002" for i in range(2)]
    assert (out / "labels.txt").read_text() == "1:a\n2:b\n"
    # Every record holds the file's own JPEG bytes (the PNG re-encoded) and its class + 1.
    expected = {}
    for path in photo_folder.rglob("*.jpg"):
        expected[path.read_bytes()] = 1 + ("/b/" in str(path))
    found = {}
    for shard in sorted(out.glob("*-of-*")):
        for raw in tf.data.TFRecordDataset(str(shard)):
            ex = tf.io.parse_single_example(raw, tfrecords.feature_spec())
            found[ex[tfrecords.ENCODED].numpy()] = int(ex[tfrecords.LABEL])
    pngs = {k: v for k, v in found.items() if k not in expected}
    assert {k: v for k, v in found.items() if k in expected} == expected and list(pngs.values()) == [2]
    # Read back: 1000-style head (label - 1) and TF-slim's head with the background class.
    for background, offset, names in ((False, 1, ["a", "b"]), (True, 0, ["background", "a", "b"])):
        data = data_lib.load_dataset(f"tfrecord:{out}", background_class=background)
        assert (data.num_train, data.num_validation, data.class_names) == (9, 4, names)
        got = sorted(int(np.argmax(y)) for _, y in data_lib.eval_input(
            data, batch_size=1, image_size=32, source=data.train_source))
        assert got == [1 - offset] * 4 + [2 - offset] * 5
        val = sum((np.argmax(y, axis=1).tolist() for _, y in data_lib.eval_input(
            data, batch_size=4, image_size=32)), [])
        assert sorted(val) == sorted([1 - offset] * 2 + [2 - offset] * 2)


@pytest.mark.parametrize("args, pattern", [
    (["--images={missing}", "--output={out}"], r"folder dataset '.*missing' does not exist"),
    (["--images={photos}", "--output={out}", "--folder_formats=jpeg,tiff"],
     r"argument --folder_formats: must be a comma-separated subset of jpeg,png,bmp,gif\. "
     r"Received: --folder_formats='jpeg,tiff'"),
    (["--images={photos}", "--output={out}", "--train_shards=50"],
     r"train: the number of shards must be in \[1, 9\] \(the train images\)\. Received: train_shards=50"),
    (["--images={photos}", "--output={photos}/train/a/0.jpg"],
     r"output .*0\.jpg is a file, not a folder"),
])
def test_writer_refusals_are_one_line_exit_2_and_write_nothing(photo_folder, tmp_path, args, pattern):
    out = tmp_path / "out"
    args = [a.format(missing=tmp_path / "missing", out=out, photos=photo_folder) for a in args]
    result = subprocess.run(WRITER + args, capture_output=True, text=True, timeout=120,
                            cwd=REPO_ROOT, env=_env())
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and re.fullmatch(r"python -m mobilenet_tf\.write_tfrecords: error: "
                                            + pattern + ".*", lines[-1]), result.stderr
    assert not out.exists()


def test_a_killed_writer_leaves_no_partial_shard(photo_folder, tmp_path):
    """SIGTERM while writing: exit 143, and every file under a final shard name is complete
    (the shard being written stays under its temporary name, removed)."""
    import signal
    import time
    big = tmp_path / "big"
    for c in ("a", "b"):
        (big / c).mkdir(parents=True)
        rng = np.random.default_rng(0)
        for i in range(150):
            image = rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)
            (big / c / f"{i}.png").write_bytes(tf.io.encode_png(image).numpy())
    out = tmp_path / "out"
    proc = subprocess.Popen(WRITER + [f"--images={big}", f"--output={out}", "--train_shards=2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT,
                            env=_env())
    deadline = time.time() + 60
    while time.time() < deadline and not (out.exists() and any(
            n.startswith(".tmp-") for n in os.listdir(out))):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == (
        "python -m mobilenet_tf.write_tfrecords: interrupted by SIGTERM: the shard being written "
        "was removed; finished shards stay (run the command again to write them all)")
    names = os.listdir(out)
    assert not [n for n in names if n.startswith(".tmp-")], names
    for name in names:                       # whatever has a final name reads to its end
        assert name.startswith("train-") or name == "labels.txt"
        if name.startswith("train-"):
            assert sum(1 for _ in tf.data.TFRecordDataset(str(out / name))) == 150


def test_object_boxes_steer_the_training_crop(tmp_path):
    """A box in the top-left corner (red there, blue elsewhere): every crop covers part of it,
    so every training image has red pixels; without the box, many crops miss the corner."""
    image = np.zeros((64, 64, 3), np.uint8)
    image[:, :, 2] = 255
    image[:12, :12] = (255, 0, 0)
    png = tf.io.encode_png(image).numpy()     # lossless: the colours stay pure
    for name, boxes in (("box", [(0.0, 0.0, 12 / 64, 12 / 64)]), ("none", [])):
        (tmp_path / name).mkdir()
        _write(tmp_path / name / "train-00000-of-00001", [_example(png, 1, boxes)] * 50 + [
            _example(png, 2, boxes)] * 50)
        (tmp_path / name / "labels.txt").write_text("1:x\n2:y\n")
    with_red = {}
    for name in ("box", "none"):
        data = data_lib.load_dataset(f"tfrecord:{tmp_path / name}")
        flags = []
        for epoch in range(4):
            for x, _ in data_lib.train_input(data, batch_size=25, image_size=32, epoch=epoch,
                                             color_distortion=False):
                red = (x[..., 0] > 0.5) & (x[..., 2] < -0.5)
                flags += np.any(red.numpy(), axis=(1, 2)).tolist()
        with_red[name] = sum(flags) / len(flags)
    assert with_red["box"] == 1.0
    # Whole-image crops cover >= 10% of the image; those missing a 12x12 corner are common.
    assert with_red["none"] < 0.9


def test_tfrecord_order_is_seeded_per_epoch_and_resumes_exactly(tmp_path):
    _indexed_shards(tmp_path / "s")
    data = data_lib.load_dataset(f"tfrecord:{tmp_path / 's'}", seed=0)
    assert (data.num_train, data.num_classes) == (24, 24)

    def labels(epoch, skip=0, seed=3):
        ds = data_lib.train_input(data, batch_size=4, image_size=16, epoch=epoch, skip_steps=skip,
                                  seed=seed, shuffle_buffer=8)
        return [np.argmax(y, axis=1).tolist() for _, y in ds]

    epoch0 = labels(0)
    assert len(epoch0) == 6 and sorted(sum(epoch0, [])) == list(range(24))
    assert labels(0) == epoch0                        # deterministic with the seed
    assert labels(0, skip=4) == epoch0[4:]            # a resumed run gets the same batches
    assert labels(1) != epoch0 and labels(0, seed=4) != epoch0


def test_workers_read_only_their_own_shard_files(tmp_path, library_log):
    """Two input pipelines: each reads shards i, i + 2, ... of the epoch's shard order (a label
    names its shard), together every example once; with 3 pipelines and 2 shards, every
    pipeline reads every shard and keeps every 3rd example (one log line says so)."""
    _indexed_shards(tmp_path / "s")
    lines = library_log
    data = data_lib.load_dataset(f"tfrecord:{tmp_path / 's'}")

    def read(num_shards, index, epoch=1, skip=0, global_batch=8):
        ds = data_lib.train_input(data, batch_size=global_batch // num_shards, image_size=16,
                                  epoch=epoch, seed=5, global_batch_size=global_batch,
                                  num_shards=num_shards, shard_index=index, skip_steps=skip)
        return sum((np.argmax(y, axis=1).tolist() for _, y in ds), [])

    seen = [read(2, i) for i in range(2)]
    shards_of = [{label // 6 for label in s} for s in seen]
    assert len(shards_of[0]) == len(shards_of[1]) == 2 and not shards_of[0] & shards_of[1]
    assert sorted(seen[0] + seen[1]) == list(range(24))      # 3 steps x 8 = all 24
    assert [{label // 6 for label in read(2, i, epoch=2)} for i in range(2)] != shards_of or \
        [{label // 6 for label in read(2, i, epoch=3)} for i in range(2)] != shards_of
    assert read(2, 1, skip=1) == seen[1][4:]                  # resume within a worker's stream
    assert any("input pipeline 1 of 2 reads shards 1, 3, ... of each epoch's order (2 of 4)" in
               line for line in lines)
    two = _indexed_shards(tmp_path / "two", shards=2, per_shard=12)
    lines.clear()
    data = data_lib.load_dataset(f"tfrecord:{two}")
    seen = [read(3, i, global_batch=12) for i in range(3)]
    assert sorted(sum(seen, [])) == list(range(24)) and all({x // 12 for x in s} == {0, 1} for s in seen)
    assert sum("2 shard(s) for 3 input pipelines: fewer shards than pipelines, so every pipeline "
               "reads every shard and keeps every 3-th example" in line for line in lines) == 1


def _text_file(d):
    (d / "train-00000-of-00001").write_bytes(b"plain text, no records" * 10)
    return f"tfrecord:{d}"


def _records(*examples, labels=None):
    def make(d):
        _write(d / "train-00000-of-00001", list(examples))
        if labels:
            (d / "labels.txt").write_text(labels)
        return f"tfrecord:{d}"
    return make


@pytest.mark.parametrize("make, pattern", [
    (lambda d: f"tfrecord:{d}/nothing-*", r"tfrecord: no file matches .*/nothing-\*; expected TF-slim"),
    (lambda d: f"tfrecord:{d}", r"tfrecord: no file matches .*/train-\* \(the train shards of folder"),
    (_text_file, r"tfrecord: .*/train-00000-of-00001 is not a TFRecord file or is damaged \("),
    (_records(b"not an Example proto"),
     r"tfrecord: .*train-00000-of-00001: its records are not tf\.train\.Example protos"),
    (_records(tf.train.Example().SerializeToString()),
     r"tfrecord: .*train-00000-of-00001: its examples have no "
     r"'(image/encoded|image/class/label)' feature"),
    (_records(_example(b"x", 0)),
     r"tfrecord: .*train-00000-of-00001: label 0 is outside 1\.\.1000 \(TF-slim's image/class/label: "
     r"classes 1\.\.K, 0 the background, K from labels\.txt beside the shards, else 1000 for ImageNet\)"),
    (_records(_example(b"x", 3), labels="1:a\n2:b\n"), r"label 3 is outside 1\.\.2 "),
])
def test_bad_shards_are_one_line_errors(tmp_path, make, pattern):
    spec = make(tmp_path)
    with pytest.raises(InputError, match=pattern) as info:
        data_lib.load_dataset(spec)
    assert "\n" not in str(info.value)


def test_label_out_of_range_met_in_training_stops_with_one_line(tmp_path):
    """The first records are checked at start; a bad label further in stops the pipeline, and
    train.py with one line naming the label and the allowed range, exit status 1 (a failure
    during the work), no traceback."""
    pixel = tf.io.encode_jpeg(np.zeros((8, 8, 3), np.uint8)).numpy()
    _write(tmp_path / "train-00000-of-00001", [_example(pixel, 1)] * 12 + [_example(pixel, 3)])
    (tmp_path / "labels.txt").write_text("1:a\n2:b\n")
    spec = f"tfrecord:{tmp_path}"
    data = data_lib.load_dataset(spec)
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        list(data_lib.eval_input(data, batch_size=4, image_size=16, source=data.train_source))
    expected = (f"{spec}: a stored label (3) is outside 1..2 (0 is the background class of TF-slim, "
                "for which the 2-class head has no output)")
    assert data_lib.pipeline_error(info.value) == expected
    assert data_lib.pipeline_error(tf.errors.InvalidArgumentError(None, None, "other")) is None
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "train.py"), f"--dataset={spec}", "--alpha=0.25",
         "--image_size=32", "--batch_size=13", "--train_steps=1", "--mode=train", "--verbose=0",
         f"--model_dir={tmp_path / 'run'}"], cwd=REPO_ROOT, env=_env(), capture_output=True,
        text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"train.py: error: {expected}; training stopped; the last good checkpoint is none (no "
        "checkpoint was written yet)"], result.stderr


# --- folder manifest ------------------------------------------------------------------------------

def test_folder_manifest_is_kept_reused_unopened_and_rebuilt_when_the_folder_changes(
        tmp_path, library_log):
    root = tmp_path / "photos"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(5):
            _jpeg(root / c / f"{i}.jpg", (50 * i, 0, 0))
    run = tmp_path / "run" / data_lib.MANIFEST_DIR
    lines = library_log
    first = data_lib.load_dataset(f"folder:{root}", manifest_dir=str(run))
    assert not run.exists()                   # nothing in the run folder until training starts
    data_lib.save_manifest(first, str(run))
    assert sorted(os.listdir(run)) == ["manifest.json", "train.tsv", "validation.tsv"]
    # Same size and mtime, content no longer an image: the listing is unchanged, so the manifest
    # is reused without opening the file (the header check would have left it out).
    victim = root / "a" / "0.jpg"
    stat = victim.stat()
    victim.write_bytes(b"x" * stat.st_size)
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    lines.clear()
    again = data_lib.load_dataset(f"folder:{root}", manifest_dir=str(run))
    assert any("reusing" in line and "no file opened" in line for line in lines), lines
    assert (again.num_train, again.num_validation, again.skipped) == (
        first.num_train, first.num_validation, [])
    assert again.manifest["dir"] == str(run)
    # A new file changes the listing: a new manifest, with the header check.
    _jpeg(root / "b" / "new.jpg", (1, 2, 3))
    lines.clear()
    changed = data_lib.load_dataset(f"folder:{root}", manifest_dir=str(run))
    assert any("the folder changed since its manifest" in line for line in lines), lines
    assert changed.num_train + changed.num_validation == 10
    assert [os.path.basename(p) for p, _ in changed.skipped] == ["0.jpg"]
    assert changed.manifest["dir"] != str(run)
    info = json.loads((run / "manifest.json").read_text())
    assert info["files"] == 10                # the kept one is replaced only by save_manifest
    data_lib.save_manifest(changed, str(run))
    assert json.loads((run / "manifest.json").read_text())["files"] == 11


LEGACY = REPO_ROOT / "tests" / "data" / "runs_0_1_0"
# The fingerprint that 0.1.0 (commit 2ead3fe, datasets._folder_fingerprint) computes for its
# photos/ folder, listed as "photos", with every file's mtime set to _LEGACY_MTIME_NS.
_LEGACY_MTIME_NS = 1_700_000_000_123_456_789
_LEGACY_FINGERPRINT = "15e5c97fe4f6231c1d094256aa1a2d444cfe26c4716ec7c234faebc1b1696f96"


def test_a_manifest_kept_by_0_1_0_is_read_and_reused(tmp_path, monkeypatch, library_log):
    """The manifest a 0.1.0 run kept (``runs_0_1_0/folder/folder_manifest``, made in
    /tmp/legacy_runs from --dataset=folder:photos): listing the same photos today gives the same
    files, labels and held-out draw byte for byte, the same description and the fingerprint
    0.1.0 computes; and with the folder where it was made, the kept manifest is reused without
    opening a file."""
    shutil.copytree(LEGACY / "photos", tmp_path / "photos")
    for path in (tmp_path / "photos").rglob("*.jpg"):
        os.utime(path, ns=(_LEGACY_MTIME_NS, _LEGACY_MTIME_NS))
    monkeypatch.chdir(tmp_path)
    kept = LEGACY / "folder" / "folder_manifest"
    info = json.loads((kept / "manifest.json").read_text())
    fresh = data_lib.load_dataset("folder:photos", validation_fraction=0.25)
    for name in ("train.tsv", "validation.tsv"):
        assert open(os.path.join(fresh.manifest["dir"], name)).read() == (kept / name).read_text()
    made = fresh.manifest["info"]
    assert made["key"] == dict(info["key"], folder=os.path.abspath("photos"))
    assert made["fingerprint"] == _LEGACY_FINGERPRINT
    # sha256: the checksum of the .tsv files, which manifests keep since issue 27.
    assert {k: v for k, v in made.items() if k not in ("key", "fingerprint", "sha256")} == {
        k: v for k, v in info.items() if k not in ("key", "fingerprint")}
    # The kept manifest, as 0.1.0 would find it had it been made in this folder.
    run = tmp_path / "run" / data_lib.MANIFEST_DIR
    shutil.copytree(kept, run)
    (run / "manifest.json").write_text(json.dumps(dict(
        info, key=dict(info["key"], folder=os.path.abspath("photos")),
        fingerprint=_LEGACY_FINGERPRINT)))
    library_log.clear()
    again = data_lib.load_dataset("folder:photos", validation_fraction=0.25, manifest_dir=str(run))
    assert any(f"reusing {run} (18 files, no file opened)" in line for line in library_log)
    assert (again.num_train, again.num_validation, again.class_names) == (
        12, 6, ["blue", "green", "red"])
    assert sorted(int(y) for _, y in again.validation_source.as_numpy_iterator()) == [
        0, 0, 1, 1, 2, 2]


def test_a_training_run_keeps_the_manifest_reuses_it_on_resume_and_counts_undecodable_files(
        tmp_path, library_log):
    """Through training.train (what train.py runs): the manifest lands in the run folder, the
    resumed run reuses it, and a JPEG that passes the header check but cannot be decoded is
    named once, counted in the log and the summary, and the run goes on."""
    from mobilenet_tf import training
    root = tmp_path / "photos"
    for c, n in (("a", 4), ("b", 3)):
        (root / c).mkdir(parents=True)
        for i in range(n):
            _jpeg(root / c / f"{i}.jpg", (60 * i, 120 * (c == "b"), 0))
    whole = _jpeg(tmp_path / "whole.jpg", (9, 9, 9))
    (root / "b" / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    # 8 files, 2 steps of 4: the 7 good ones cannot fill them, so cut.jpg is met in step 1 or 2.
    config = dict(dataset=f"folder:{root}", validation_fraction=0.0, alpha=0.25, image_size=32,
                  batch_size=4, model_dir=str(tmp_path / "run"), verbose=0, mode="train")
    summary = training.train(training.TrainConfig(train_steps=2, **config))
    lines = list(library_log)
    cut = str(root / "b" / "cut.jpg")
    assert [line for line in lines if cut in line] == [
        f"folder:{root}: skipped {cut}: cannot be read or decoded (1 skipped so far; training "
        "goes on)"]
    assert f"folder:{root}: 1 file(s) could not be decoded and were skipped (named above)" in lines
    assert summary["final_step"] == 2 and summary["skipped_files"] == 1
    kept = tmp_path / "run" / data_lib.MANIFEST_DIR
    assert json.loads((kept / "manifest.json").read_text())["num_train"] == 8
    library_log.clear()
    summary = training.train(training.TrainConfig(train_steps=4, **config))
    lines = list(library_log)
    assert any(f"reusing {kept} (8 files, no file opened)" in line for line in lines), lines
    assert summary["start_step"] == 2 and summary["final_step"] == 4


# --- issue 27, groups 2 and 4: a kept manifest is verified; stale shards are removed ---------------

def _two_classes(root, n=6):
    for c in ("ants", "bees"):
        (root / c).mkdir(parents=True)
        for i in range(n):
            _jpeg(root / c / f"{i}.jpg", (40 * i, 100 * (c == "bees"), 0))
    return root


def _swap_labels(lines):
    first, last = lines[0].split("\t"), lines[-1].split("\t")
    return [f"{last[0]}\t{first[1]}", *lines[1:-1], f"{first[0]}\t{last[1]}"]


@pytest.mark.parametrize("damage, unchecked", [
    (lambda lines: lines[:5], r"train\.tsv has 5 lines, its manifest\.json says 10"),
    (lambda lines: ["99\t" + lines[0].split("\t")[1], *lines[1:]],
     r"train\.tsv line 1 has no label of the 2 classes: '99\\t.*'"),
    (lambda lines: [lines[0], lines[0], *lines[2:]],
     r"train\.tsv line 2 is out of order or repeated: '.*'"),
    (lambda lines: lines[::-1], r"train\.tsv line 2 is out of order or repeated: '.*'"),
    (_swap_labels, r"train\.tsv line 1: '.*ants/.*' is not in the folder of class 'bees' "
                   r"\(.*photos/bees\)"),
    (lambda lines: ["0\t/etc/passwd", *lines[1:]],
     r"train\.tsv line 1: '/etc/passwd' is not in the folder of class 'ants' \(.*\)"),
])
@pytest.mark.parametrize("checksum", [True, False])
def test_a_damaged_manifest_is_rebuilt_saying_why(tmp_path, library_log, damage, unchecked,
                                                  checksum):
    """Group 2: a kept train.tsv cut short, with a label out of range, a line twice, lines
    swapped, labels swapped or a line pointing outside the dataset is not reused; the log
    says why, and the new manifest is the folder's. Without its checksum (as 0.1.0 kept
    them) the lines themselves are checked."""
    root = _two_classes(tmp_path / "photos")
    run = tmp_path / "run" / data_lib.MANIFEST_DIR
    data_lib.save_manifest(data_lib.load_dataset(f"folder:{root}", manifest_dir=str(run)), str(run))
    good = (run / "train.tsv").read_text()
    (run / "train.tsv").write_text("".join(line + "\n" for line in damage(good.splitlines())))
    reason = r"train\.tsv does not match its checksum in manifest\.json"
    if not checksum:
        info = json.loads((run / "manifest.json").read_text())
        del info["sha256"]
        (run / "manifest.json").write_text(json.dumps(info))
        reason = unchecked
    library_log.clear()
    again = data_lib.load_dataset(f"folder:{root}", manifest_dir=str(run))
    said = [line for line in library_log if "cannot be trusted" in line]
    assert len(said) == 1 and re.fullmatch(rf"folder:.*: the manifest in .* cannot be trusted "
                                           rf"\({reason}\): making a new one", said[0]), library_log
    assert again.manifest["dir"] != str(run) and again.num_train == 10
    assert open(os.path.join(again.manifest["dir"], "train.tsv")).read() == good


def test_a_renamed_class_folder_rebuilds_the_manifest_and_refuses_the_resume(tmp_path, library_log):
    """Group 2: bees/ renamed wasps/ between two runs: the manifest is rebuilt saying so, and
    the run folder, trained with class 1 'bees', refuses to go on with 'wasps'."""
    from mobilenet_tf import training
    root = _two_classes(tmp_path / "photos", n=3)
    config = dict(dataset=f"folder:{root}", validation_fraction=0.0, alpha=0.25, image_size=32,
                  batch_size=4, model_dir=str(tmp_path / "run"), verbose=0, mode="train")
    training.train(training.TrainConfig(train_steps=1, **config))
    os.rename(root / "bees", root / "wasps")
    library_log.clear()
    with pytest.raises(training.RunFolderError, match=r"^model_dir .*run holds a run whose class 1 "
                                                      r"is 'bees', this run's is 'wasps' \(a class "
                                                      r"folder renamed\?\)"):
        training.train(training.TrainConfig(train_steps=2, **config))
    assert any("(class folders ['ants', 'bees'] are now ['ants', 'wasps']): making a new one"
               in line for line in library_log), library_log
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["final_step"] == 1


def test_rewriting_with_other_shard_counts_removes_the_stale_shards(tmp_path, capsys):
    """Group 4: 1 then 2 training shards into one folder: the first write's shard is removed
    (and named), so tfrecord:DIR reads each example once."""
    from mobilenet_tf import write_tfrecords
    root = _two_classes(tmp_path / "photos", n=2)
    out = tmp_path / "shards"
    for shards in (1, 2):
        assert write_tfrecords.main([f"--images={root}", f"--output={out}",
                                     f"--train_shards={shards}"]) == 0
    stdout = capsys.readouterr().out
    assert "removed 1 shard of an earlier write with another shard count: train-00000-of-00001" \
        in stdout
    assert sorted(os.listdir(out)) == ["labels.txt", "train-00000-of-00002", "train-00001-of-00002"]
    assert data_lib.load_dataset(f"tfrecord:{out}", validation_fraction=0).num_train == 4
    # Shards of two writes (another tool's, or copied back): tfrecord:DIR refuses them.
    shutil.copy(out / "train-00000-of-00002", out / "train-00000-of-00001")
    with pytest.raises(InputError, match=r"tfrecord: folder .*shards holds the train shards of 2 writes "
                                         r"\(-of-00001, -of-00002\): each example would be read "
                                         r"more than once"):
        data_lib.load_dataset(f"tfrecord:{out}", validation_fraction=0)


# --- tfds imagenet2012 ----------------------------------------------------------------------------

def test_imagenet2012_reads_with_tfds_mock_data(tmp_path):
    """tfds' own mock examples of imagenet2012 (JPEG bytes, labels 0..999) through load_dataset
    and the pipelines, with the split sizes of a prepared data_dir (its dataset_info.json)."""
    import tensorflow_datasets as tfds
    builder = tfds.builder("imagenet2012", data_dir=str(tmp_path))
    info = builder.info
    info.set_splits(tfds.core.SplitDict([
        tfds.core.SplitInfo(name=s, shard_lengths=[n], num_bytes=0, filename_template=None)
        for s, n in (("train", 12), ("validation", 12))]))
    os.makedirs(builder.data_dir)
    info.write_to_directory(builder.data_dir)
    with tfds.testing.mock_data(num_examples=12, data_dir=str(tmp_path),
                                policy=tfds.testing.MockPolicy.USE_FILES):
        data = data_lib.load_dataset("imagenet2012", data_dir=str(tmp_path))
        assert (data.num_classes, data.num_train, data.num_validation) == (1000, 12, 12)
        assert data.class_names[0] == "n01440764"
        x, y = next(iter(data_lib.train_input(data, batch_size=4, image_size=32)))
        assert x.shape == (4, 32, 32, 3) and y.shape == (4, 1000)
        batches = data_lib.eval_input(data, batch_size=5, image_size=32)
        assert sum(int(b[0].shape[0]) for b in batches) == 12


def test_missing_imagenet_archives_say_where_they_go(tmp_path):
    manual = tmp_path / "downloads" / "manual"
    manual.mkdir(parents=True)
    (manual / "ILSVRC2012_img_val.tar").write_bytes(b"")
    with pytest.raises(data_lib.DatasetError) as info:
        data_lib.load_dataset("imagenet2012", data_dir=str(tmp_path))
    assert str(info.value) == (
        f"tfds dataset 'imagenet2012' is not prepared in {tmp_path} and needs a manual download: "
        f"put ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar (ILSVRC2012_img_train.tar "
        f"missing; from https://image-net.org/download-images, after registering) in {manual}, "
        f"then run `tfds build imagenet2012 --data_dir=DIR` (or train once with --data_dir=DIR, "
        "which prepares it) and pass --data_dir=DIR")
