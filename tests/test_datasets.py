"""Data readers and pipelines: folder scanning (bad files reported and left out), the shared layout
rules and hold-out draw, tfds errors (training and evaluate), synthetic data, pipelines."""

import collections
import os
import time

import numpy as np
import pytest
import tensorflow as tf

import numerics
from mobilenet_tf import data as data_lib
from mobilenet_tf.data import checks, decoding, manifest
from mobilenet_tf.data.options import DEFAULT_FOLDER_FORMATS, parse_dataset_spec
from mobilenet_tf.data.readers import tfds as tfds_reader


def _png(path, rgb, size=(40, 40)):
    image = np.zeros((*size, 3), np.uint8) + np.array(rgb, np.uint8)
    tf.io.write_file(str(path), tf.io.encode_png(image))


def _jpeg_bytes(size=(40, 40)):
    image = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    return tf.io.encode_jpeg(image).numpy()


@pytest.fixture
def bad_folder(tmp_path, shared_data):
    """Two classes of PNGs plus the real GIF placeholder, a truncated JPEG and a text file."""
    for cls, rgb in (("ants", (200, 0, 0)), ("bees", (0, 0, 200))):
        (tmp_path / cls).mkdir()
        for i in range(5):
            _png(tmp_path / cls / f"{i}.png", rgb)
    gif = shared_data / "hymenoptera" / "train" / "ants" / "imageNotFound.gif"
    (tmp_path / "ants" / "imageNotFound.gif").write_bytes(gif.read_bytes())
    data = _jpeg_bytes()
    (tmp_path / "bees" / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "bees" / "notes.txt").write_text("not an image")
    (tmp_path / "bees" / ".DS_Store").write_bytes(b"\0\0")
    return tmp_path


def test_gif_and_text_are_left_out_at_start_and_truncated_jpeg_when_met(bad_folder, library_log):
    """The start-up check reads headers only: the GIF (formats) and the text file are left out
    and reported; the truncated JPEG has a JPEG header, so it is skipped when the pipeline meets
    it, named once however often it is met, and every other image comes through."""
    lines = library_log
    data = data_lib.load_dataset(f"folder:{bad_folder}", validation_fraction=0.2)
    skipped = dict(data.skipped)
    assert sorted(os.path.basename(p) for p in skipped) == ["imageNotFound.gif", "notes.txt"]
    gif = str(bad_folder / "ants" / "imageNotFound.gif")
    assert skipped[gif].startswith("GIF: pass --folder_formats=jpeg,png,bmp,gif")
    assert "placeholders or animations" in skipped[gif]
    assert skipped[str(bad_folder / "bees" / "notes.txt")] == "not an image file (extension '.txt')"
    report = "\n".join(lines)
    assert "left out 2 of 13 files" in report and f"{gif}: GIF" in report
    assert data.num_train + data.num_validation == 11 and data.num_validation == 2
    assert data.class_names == ["ants", "bees"]
    assert data_lib.skipped_during_training(data) == []
    lines.clear()
    for _ in range(2):       # every image the pipelines yield decodes; the bad one is met twice
        counts = [sum(int(b[0].shape[0]) for b in data_lib.eval_input(
            data, batch_size=4, image_size=32, source=source))
            for source in (data.train_source, data.validation_source)]
        assert sum(counts) == 10
    truncated = str(bad_folder / "bees" / "truncated.jpg")
    assert data_lib.skipped_during_training(data) == [truncated]
    assert [line for line in lines if "truncated.jpg" in line] == [
        f"folder:{bad_folder}: skipped {truncated}: cannot be read or decoded (1 skipped so far; "
        "training goes on)"]


def test_undecodable_files_do_not_shorten_an_epoch(tmp_path):
    """An epoch has steps_per_epoch full batches even when files in it cannot be decoded: the
    next examples take their places, and the run goes on."""
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(4):
            _png(tmp_path / cls / f"{i}.png", (60 * i, 0, 0), size=(8, 8))
    data = _jpeg_bytes()
    for name in ("x.jpg", "y.jpg"):
        (tmp_path / "b" / name).write_bytes(data[: len(data) // 3])
    data = data_lib.load_dataset(f"folder:{tmp_path}", validation_fraction=0)
    assert data.num_train == 10              # both pass the header check: 2 steps of 4
    for epoch in range(4):
        batches = list(data_lib.train_input(data, batch_size=4, image_size=16, epoch=epoch))
        assert [int(x.shape[0]) for x, _ in batches] == [4, 4]
    assert sorted(os.path.basename(p) for p in data_lib.skipped_during_training(data)) == [
        "x.jpg", "y.jpg"]


def test_validation_images_left_out_are_not_counted_as_validated(tmp_path):
    """issue 27, group 14: a validation image that cannot be decoded is left out of the count
    a run and an evaluation report ("(N images)"), not only out of the batches; one met in
    training is not subtracted."""
    for split in ("train", "val"):
        for cls in ("a", "b"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(3):
                _png(tmp_path / split / cls / f"{i}.png", (60 * i, 0, 0), size=(8, 8))
    data = _jpeg_bytes()
    (tmp_path / "val" / "b" / "x.jpg").write_bytes(data[: len(data) // 3])
    (tmp_path / "train" / "a" / "y.jpg").write_bytes(data[: len(data) // 3])
    data = data_lib.load_dataset(f"folder:{tmp_path}")
    assert (data.num_train, data.num_validation) == (7, 7)
    list(data_lib.train_input(data, batch_size=7, image_size=16))
    validated = sum(int(x.shape[0]) for x, _ in data_lib.eval_input(data, batch_size=4,
                                                                    image_size=16))
    assert validated == data.pipeline.validated(data.num_validation) == 6


@pytest.mark.parametrize("threads_above", [float("inf"), -1.0])
def test_header_checks_in_threads_or_not_find_the_same_files(tmp_path, monkeypatch, threads_above):
    """The header check runs on one thread when a file is quick to check and in chunks over
    threads when storage is slow: the same files are left out, each with its own reason, in
    order, either way (a probe of 2 files, chunks of 3, bad files spread over the chunks)."""
    monkeypatch.setattr(checks, "_PROBE_FILES", 2)
    monkeypatch.setattr(checks, "_CHUNK_FILES", 3)
    monkeypatch.setattr(checks, "_THREADS_ABOVE_SECONDS", threads_above)
    jpeg = _jpeg_bytes((8, 8))
    pairs, expected = [], []
    for i in range(14):
        path = tmp_path / f"{i:02d}.jpg"
        if i % 4 == 1:
            path.write_bytes(b"")
            expected.append((str(path), "empty file"))
        elif i % 5 == 3:
            path.write_bytes(b"text, not an image")
            expected.append((str(path), "not a JPEG, PNG, GIF or BMP image"))
        else:
            path.write_bytes(jpeg)
        pairs.append((str(path), i % 2))
    assert checks.check_files(pairs, DEFAULT_FOLDER_FORMATS) == expected
    assert len(expected) == 6


def test_gif_is_read_when_asked(bad_folder):
    data = data_lib.load_dataset(f"folder:{bad_folder}", validation_fraction=0.2,
                                 formats=("jpeg", "png", "gif"))
    assert [os.path.basename(p) for p, _ in data.skipped] == ["notes.txt"]
    assert data.num_train + data.num_validation == 12


def test_hymenoptera_layout_counts_and_gif(shared_data, library_log):
    lines = library_log
    data = data_lib.load_dataset(f"folder:{shared_data / 'hymenoptera'}")
    assert data.class_names == ["ants", "bees"]
    assert (data.num_train, data.num_validation) == (124 + 121 - 1, 70 + 83)
    assert [os.path.basename(p) for p, _ in data.skipped] == ["imageNotFound.gif"]
    assert any("left out 1 of 398 files" in line for line in lines)


def test_train_val_layout_and_class_mismatch(tmp_path):
    for split in ("train", "val"):
        for cls in ("a", "b"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(3):
                _png(tmp_path / split / cls / f"{i}.png", (i * 40, 0, 0))
    data = data_lib.load_dataset(f"folder:{tmp_path}")
    assert (data.num_train, data.num_validation, data.num_classes) == (6, 6, 2)
    (tmp_path / "val" / "c").mkdir()
    with pytest.raises(data_lib.DatasetError, match=r"val/ has classes that train/ lacks: \['c'\]"):
        data_lib.load_dataset(f"folder:{tmp_path}")


def test_held_out_fraction_is_per_class_and_seeded(tmp_path):
    for cls in ("a", "b", "c"):
        (tmp_path / cls).mkdir()
        for i in range(10):
            _png(tmp_path / cls / f"{i}.png", (i, 0, 0), size=(8, 8))
    scan = data_lib.scan_folder(str(tmp_path))
    train, val = manifest.hold_out(scan.train, 0.2, 3, seed=0)
    assert len(val) == 6 and sorted(label for _, label in val) == [0, 0, 1, 1, 2, 2]
    assert not set(train) & set(val)
    assert manifest.hold_out(scan.train, 0.2, 3, seed=0) == (train, val)


@pytest.mark.parametrize("make, pattern", [
    (lambda p: p / "missing", r"folder dataset '.*missing' does not exist \(expected PATH/<class>/"),
    (lambda p: p, r"folder dataset '.*' needs at least 2 class sub-folders, found 0"),
])
def test_missing_or_empty_folder_is_one_line_error(tmp_path, make, pattern):
    t0 = time.perf_counter()
    with pytest.raises(data_lib.DatasetError, match=pattern) as info:
        data_lib.load_dataset(f"folder:{make(tmp_path)}")
    assert "\n" not in str(info.value) and time.perf_counter() - t0 < 5


def test_folder_without_images(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
    (tmp_path / "a" / "x.txt").write_text("x")
    with pytest.raises(data_lib.DatasetError,
                       match=r"has no usable training image \(1 files left out, first: .*x\.txt: "
                             r"not an image file"):
        data_lib.load_dataset(f"folder:{tmp_path}")


def test_unknown_tfds_dataset_is_one_line_error_within_seconds(tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(data_lib.DatasetError,
                       match=r"dataset 'no_such_dataset' is not a tensorflow-datasets dataset"):
        data_lib.load_dataset("no_such_dataset", data_dir=str(tmp_path))
    assert time.perf_counter() - t0 < 10


def test_unprepared_imagenet_says_how_to_provide_it(tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(data_lib.DatasetError) as info:
        data_lib.load_dataset("imagenet2012", data_dir=str(tmp_path))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"tfds dataset 'imagenet2012' is not prepared in {tmp_path} and needs "
                              "a manual download")
    assert "tfds build imagenet2012 --data_dir=DIR" in message
    assert time.perf_counter() - t0 < 10


def test_no_download_means_one_line_error(tmp_path):
    with pytest.raises(data_lib.DatasetError,
                       match=r"tfds dataset 'tf_flowers' is not prepared in .* downloads are off"):
        data_lib.load_dataset("tf_flowers", data_dir=str(tmp_path), download=False)


@pytest.mark.parametrize("spec, expected", [
    ("synthetic", ("synthetic", None)),
    ("folder:/data/x", ("folder", "/data/x")),
    ("tf_flowers", ("tfds", "tf_flowers")),
    ("imagenet2012:5.1.0", ("tfds", "imagenet2012:5.1.0")),
    ("stanford_dogs", ("tfds", "stanford_dogs")),
])
def test_parse_dataset_spec(spec, expected):
    assert parse_dataset_spec(spec) == expected


@pytest.mark.parametrize("spec, pattern", [
    ("folder:", r"dataset 'folder:PATH' needs the path .* Received: dataset='folder:'"),
    ("Bad Name", r"dataset must be a tfds name .* Received: dataset='Bad Name'"),
    ("", r"Received: dataset=''"),
])
def test_parse_dataset_spec_errors(spec, pattern):
    with pytest.raises(ValueError, match=pattern):
        parse_dataset_spec(spec)


def test_synthetic_dataset_shapes_and_determinism():
    data = data_lib.load_dataset("synthetic", image_size=48, synthetic_examples=20,
                                 synthetic_classes=7, validation_fraction=0.25)
    assert (data.num_train, data.num_validation, data.num_classes) == (15, 5, 7)
    a = [(x.numpy(), int(y)) for x, y in data.train_source]
    b = [(x.numpy(), int(y)) for x, y in data.train_source]
    assert a[0][0].shape == (48, 48, 3) and a[0][0].dtype == np.uint8
    assert all(np.array_equal(x1, x2) and y1 == y2 for (x1, y1), (x2, y2) in zip(a, b))
    assert all(0 <= y < 7 for _, y in a)


def test_train_input_is_a_function_of_epoch_and_step():
    """The batches of epoch e from step k equal those of a run that started at step 0 (exact resume)."""
    data = data_lib.load_dataset("synthetic", image_size=32, synthetic_examples=42,
                                 synthetic_classes=1000, validation_fraction=0)
    kwargs = dict(batch_size=4, image_size=32, seed=3)   # 10 steps per epoch, 2 examples unused

    def labels(epoch, skip=0):
        ds = data_lib.train_input(data, epoch=epoch, skip_steps=skip, **kwargs)
        return [np.argmax(y.numpy(), axis=-1).tolist() for _, y in ds]

    epoch0, epoch1 = labels(0), labels(1)
    assert len(epoch0) == len(epoch1) == 10
    assert labels(0, skip=7) == epoch0[7:]
    assert labels(1, skip=3) == epoch1[3:]
    assert labels(1) == epoch1
    # An epoch is 40 distinct examples of the 42; epochs differ in order.
    flat0, flat1 = sum(epoch0, []), sum(epoch1, [])
    all_labels = [int(y) for _, y in data.train_source]
    assert len(flat0) == 40 and not collections.Counter(flat0) - collections.Counter(all_labels)
    assert flat0 != flat1
    x, y = next(iter(data_lib.train_input(data, **kwargs)))
    assert x.shape == (4, 32, 32, 3) and y.shape == (4, 1000) and x.dtype == tf.float32
    with pytest.raises(ValueError, match=r"`skip_steps` must be in \[0, 10\)\. Received: skip_steps=10"):
        data_lib.train_input(data, skip_steps=10, **kwargs)


def test_train_input_with_a_global_seed_of_0_is_reproducible():
    """keras.utils.set_random_seed(0) sets the global seed 0, which breaks tensor shuffle seeds."""
    data = data_lib.load_dataset("synthetic", image_size=32, synthetic_examples=16,
                                 synthetic_classes=100, validation_fraction=0)

    def labels():
        tf.random.set_seed(0)
        return [y.numpy().argmax(-1).tolist() for _, y in data_lib.train_input(
            data, batch_size=4, image_size=32, epoch=2, skip_steps=1)]

    a = labels()
    assert a == labels() and len(a) == 3


def test_eval_input_is_in_order_and_complete(bad_folder):
    data = data_lib.load_dataset(f"folder:{bad_folder}", validation_fraction=0.2)
    batches = list(data_lib.eval_input(data, batch_size=3, image_size=32))
    assert sum(int(x.shape[0]) for x, _ in batches) == data.num_validation


def test_parallel_decoding_keeps_the_order_around_a_bad_file(tmp_path):
    """Examples are decoded in parallel, several at once: the images still come out in the
    manifest's order (each file a flat colour that names it), with an undecodable file in the
    middle left out and named."""
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
    values = [3 * i for i in range(min(85, 3 * decoding._DECODE_CYCLE + 5))]   # up to 252
    for i, v in enumerate(values):
        _png(tmp_path / "a" / f"{i:03d}.png", (v, v, v), size=(8, 8))
    whole = _jpeg_bytes((8, 8))
    (tmp_path / "a" / "020x.jpg").write_bytes(whole[: len(whole) // 2])
    _png(tmp_path / "b" / "0.png", (254, 254, 254), size=(8, 8))
    data = data_lib.load_dataset(f"folder:{tmp_path}", validation_fraction=0.0)
    seen = []
    for x, _ in data_lib.eval_input(data, batch_size=7, image_size=8, source=data.train_source):
        # A flat image stays flat through crop and resize; [-1, 1] back to 0..255.
        seen += np.round((x.numpy().mean(axis=(1, 2, 3)) + 1) * 127.5).astype(int).tolist()
    assert seen == values + [254]
    assert [os.path.basename(p) for p in data_lib.skipped_during_training(data)] == ["020x.jpg"]


def test_eval_input_is_preprocess_for_eval_of_each_decoded_file(shared_data):
    """The validation images train.py scores are the files, decoded, through TF-slim's evaluation
    preprocessing (central crop 0.875, bilinear resize): exactly, in the folder's order."""
    from mobilenet_tf.data import images
    from mobilenet_tf.data import preprocessing
    root = shared_data / "hymenoptera"
    data = data_lib.load_dataset(f"folder:{root}")
    paths = [p for p, _ in data_lib.scan_folder(str(root)).validation]
    assert len(paths) == data.num_validation == 153
    batches = data_lib.eval_input(data, batch_size=64, image_size=96)
    got = np.concatenate([x.numpy() for x, _ in batches])
    for path, image in zip(paths, got):
        expected = preprocessing.preprocess_for_eval(images.load_image(path), 96, 96)
        np.testing.assert_array_equal(image, expected.numpy(), err_msg=path)


def _indexed_dataset(n=16, size=48):
    """n random images whose label is their index, so a batch says which images it holds."""
    rng = np.random.default_rng(0)
    pictures = rng.integers(0, 256, (n, size, size, 3)).astype(np.uint8)
    source = tf.data.Dataset.from_tensor_slices((pictures, np.arange(n, dtype=np.int64)))
    return pictures, data_lib.ImageDataset(spec="indexed", num_classes=n, num_train=n,
                                           num_validation=0, train_source=source,
                                           validation_source=None, encoded=False)


def test_train_input_applies_the_augmentation_it_is_given():
    """min_crop_area=1 without colour: each training image is the whole picture resized, or its
    mirror. With the defaults most are neither (crops and colour change them)."""
    from mobilenet_tf.data import preprocessing
    pictures, data = _indexed_dataset()
    whole = {i: preprocessing.preprocess_for_eval(p, 32, 32, central_fraction=None).numpy()
             for i, p in enumerate(pictures)}

    def unchanged(**kwargs):
        flags = []
        for x, y in data_lib.train_input(data, batch_size=4, image_size=32, **kwargs):
            for image, index in zip(x.numpy(), y.numpy().argmax(axis=1)):
                # Resizing a mirrored picture is the mirrored resize: float32 rounding apart.
                flags.append(any(np.allclose(image, w, rtol=0, atol=8 * numerics.U32)
                                 for w in (whole[index], whole[index][:, ::-1])))
        return flags

    assert all(unchanged(min_crop_area=1.0, color_distortion=False))
    assert sum(unchanged()) <= len(pictures) // 4


def test_no_network_for_a_download_is_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setattr(tfds_reader, "_network_reachable", lambda timeout=3.0: False)
    t0 = time.perf_counter()
    with pytest.raises(data_lib.DatasetError) as info:
        data_lib.load_dataset("tf_flowers", data_dir=str(tmp_path))
    assert str(info.value) == (
        f"tfds dataset 'tf_flowers' is not prepared in {tmp_path} and the network is not reachable "
        "to download it: run `tfds build tf_flowers --data_dir=DIR` on a machine with network, copy "
        "DIR here and pass --data_dir=DIR")
    assert time.perf_counter() - t0 < 10


def test_imagenet_wordnet_id_folders_get_imagenet_label_indices(tmp_path, shared_data):
    """A folder of WordNet-id class folders (ImageNet's own layout) is labelled with the
    1000-class head's indices (labels.csv of imagenet50 is the oracle), so a pretrained ImageNet
    head is kept; any other folder name keeps 0..n-1 labels."""
    import csv
    rows = list(csv.DictReader(open(shared_data / "imagenet50" / "labels.csv")))[:6]
    for split in ("train", "val"):
        for row in rows:
            target = tmp_path / "in" / split / row["synset"]
            target.mkdir(parents=True)
            os.symlink(shared_data / "imagenet50" / row["file"], target / row["file"])
    data = data_lib.load_dataset(f"folder:{tmp_path / 'in'}")
    assert data.num_classes == 1000 and len(data.class_names) == 1000
    expected = sorted(int(row["class_index"]) for row in rows)
    assert sorted(int(label) for _, label in data.validation_source.as_numpy_iterator()) == expected
    assert data.class_names[expected[0]] != "class_0"
    os.rename(tmp_path / "in" / "train" / rows[0]["synset"], tmp_path / "in" / "train" / "other")
    os.rename(tmp_path / "in" / "val" / rows[0]["synset"], tmp_path / "in" / "val" / "other")
    plain = data_lib.load_dataset(f"folder:{tmp_path / 'in'}")
    assert plain.num_classes == 6


def test_the_manifest_holds_out_the_draw_of_hold_out(tmp_path):
    """One hold-out draw: the validation files of a folder's manifest are those that
    ``manifest.hold_out`` draws from the same listing (per class, seeded), for two seeds."""
    for cls, n in (("a", 7), ("b", 9), ("c", 4)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            _png(tmp_path / cls / f"{i}.png", (i, 0, 0), size=(8, 8))
    scan = data_lib.scan_folder(str(tmp_path))
    drawn = []
    for seed in (0, 1):
        data = data_lib.load_dataset(f"folder:{tmp_path}", validation_fraction=0.3, seed=seed)
        held = sorted((x["path"].decode(), int(y))
                      for x, y in data.validation_source.as_numpy_iterator())
        assert held == manifest.hold_out(scan.train, 0.3, 3, seed)[1]
        drawn.append(held)
    assert drawn[0] != drawn[1] and len(drawn[0]) == 2 + 3 + 1


def test_evaluation_and_training_read_a_folder_by_the_same_layout_rules(tmp_path):
    """``read_labelled_folder`` (predict, evaluate) and the training reader share the layout
    rules: of ``train/`` + ``validation/`` both read ``validation/``, the same files in the same
    order with the same labels, and neither reads a hidden file."""
    from mobilenet_tf.data import labelled
    for split in ("train", "validation"):
        for c, cls in enumerate(("a", "b")):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(3):
                _png(tmp_path / split / cls / f"{i}.png", (80 * c, 40 * i, 0), size=(8, 8))
    _png(tmp_path / "validation" / "a" / ".hidden.png", (1, 1, 1), size=(8, 8))
    scan = data_lib.scan_folder(str(tmp_path))
    scored = labelled.read_labelled_folder(tmp_path, ["a", "b"])
    assert scored.layout == "validation/ of a train/validation folder"
    assert list(zip(scored.paths, scored.labels)) == scan.validation
    assert len(scan.validation) == 6 and not any(".hidden" in p for p in scored.paths)


def test_evaluate_reads_tfds_by_the_training_rules_and_never_downloads(tmp_path, monkeypatch):
    """``evaluate --images=tfds:NAME`` goes through the training reader with downloads off: a
    dataset that is not prepared is refused with that reader's advice, whatever the network."""
    from mobilenet_tf.errors import InputError
    from mobilenet_tf.inference import classifier as inference
    monkeypatch.setattr(tfds_reader, "_network_reachable", lambda timeout=3.0: False)
    stub = inference.Classifier(model=None, image_size=(32, 32), names=["a", "b"], imagenet=False,
                                source="stub")
    with pytest.raises(InputError) as info:
        inference.tfds_batches("tfds:tf_flowers", stub, str(tmp_path), "resize", 4)
    assert str(info.value) == (
        f"--images=tfds:tf_flowers: cannot read the TFDS dataset (tfds dataset 'tf_flowers' is "
        f"not prepared in {tmp_path} and downloads are off: run `tfds build tf_flowers "
        "--data_dir=DIR`, pass --data_dir=DIR)")
    assert not any(tmp_path.iterdir())
