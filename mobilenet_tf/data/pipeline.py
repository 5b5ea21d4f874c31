"""The ``tf.data`` pipelines of a dataset: training batches of one epoch from any step, and
validation batches.

They read only the :class:`~mobilenet_tf.data.readers.base.ImageDataset` interface (sources,
counts, labelled, epoch and shard sources), not which reader made it: parallel decoding with
undecodable files skipped (``mobilenet_tf.data.decoding``), seeded per-epoch shuffling,
optional cache, preprocessing (``mobilenet_tf.data.preprocessing``), batching, prefetch.
"""

from mobilenet_tf.data import decoding
from mobilenet_tf.data import preprocessing
from mobilenet_tf.data.readers.base import DatasetError
from mobilenet_tf.utils import backend

tf = backend.tensorflow(backend.TF_DATA)

__all__ = ["steps_per_epoch", "train_input", "eval_input"]

_AUTOTUNE = tf.data.AUTOTUNE


def steps_per_epoch(num_examples, batch_size):
    """Full batches per epoch (at least 1)."""
    return max(1, num_examples // batch_size)


def _decoded_source(dataset, source, cache, validation=False):
    """``(uint8 image, label, boxes)`` of `source`, optionally cached after decoding."""
    if source is None:
        return None
    source = (decoding.decode_skipping(dataset, source, validation) if dataset.encoded
              else decoding.with_boxes(source))
    if cache is not None:
        source = source.cache("" if cache == "memory" else cache)
    return source


def _epoch_source(dataset, epoch, cache, num_shards=1, shard_index=0):
    """``(examples of `epoch`, still encoded?, sharded by file?)``. With a cache: decoded
    examples, one cached dataset shared by all epochs; without: as stored (decoding comes
    after shuffle and skip, so skipped examples are never decoded and the shuffle buffer holds
    encoded bytes, or only paths for folders). Several input pipelines read their own files
    when the dataset splits by file (``shard_source``)."""
    if cache is not None:
        decoded = dataset.pipeline.decoded
        if cache not in decoded:
            decoded[cache] = _decoded_source(dataset, dataset.train_source, cache)
        return decoded[cache], False, False
    if num_shards > 1:
        own = dataset.shard_source(epoch, num_shards, shard_index)
        if own is not None:
            return own, dataset.encoded, True
    return dataset.epoch_source(epoch), dataset.encoded, False


def _no_auto_shard(ds, policy):
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = policy
    return ds.with_options(options)


def train_input(dataset, *, batch_size, image_size, epoch=0, skip_steps=0, seed=0,
                shuffle_buffer=10000, min_crop_area=preprocessing.DEFAULT_MIN_CROP_AREA,
                color_distortion=True, cache=None, global_batch_size=None, num_shards=1,
                shard_index=0):
    """The training batches ``(images, one_hot_labels)`` of one epoch, from step `skip_steps` on
    (``images`` alone for a dataset without labels).

    Epoch e is the training examples shuffled with the seed ``(seed, e)`` (a
    buffer of ``min(num_train, shuffle_buffer)`` examples: a full permutation
    when the data fits; TFRecord shards are also read in an order seeded by
    ``(seed, e)``), cut to ``steps_per_epoch`` full batches. So the batches of
    a step do not depend on where a run was restarted; the random crops and
    colour changes are drawn anew. ``cache``: None, "memory" or a file prefix,
    to keep decoded images (before the random preprocessing). Returns exactly
    ``steps_per_epoch - skip_steps`` batches (when sharded: the batches of that
    many steps for this worker's replicas).

    An example whose file cannot be read or decoded (a folder's truncated JPEG,
    a damaged record) is left out, named once in the log (see
    :func:`~mobilenet_tf.data.decoding.skipped_during_training`), and the next
    one takes its place; the run goes on. (After such a file the examples of
    later steps move up by one, so a run resumed after it may see its batches
    shifted by one example.)

    Distributed training (``mobilenet_tf.training.distribute.distribute_input``): each
    of ``num_shards`` input pipelines (one per worker) reads its share of the
    epoch, in batches of ``batch_size`` (per replica), while
    ``global_batch_size`` (default ``batch_size``) sets the epoch and the
    skipped steps. TFRecord shards are split by file when there are at least
    ``num_shards`` of them (pipeline i reads files i, i + n, ... of the epoch's
    file order, and only those); otherwise, and for other data, every pipeline
    takes every ``num_shards``-th example (from ``shard_index``) of the same
    order, so the global batch at a step holds the examples it holds on one
    device. Each worker decodes only its own examples (without ``cache``).
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be an int >= 1. Received: batch_size={batch_size!r}")
    global_batch = batch_size if global_batch_size is None else global_batch_size
    if not (isinstance(num_shards, int) and num_shards >= 1 and 0 <= shard_index < num_shards
            and isinstance(global_batch, int) and global_batch % (num_shards * batch_size) == 0):
        raise ValueError(f"a global batch of {global_batch} cannot be read as {num_shards} shards "
                         f"of batches of {batch_size}. Received: global_batch_size={global_batch}, "
                         f"num_shards={num_shards}, shard_index={shard_index}")
    spe = steps_per_epoch(dataset.num_train, global_batch)
    if not 0 <= skip_steps < spe:
        raise ValueError(f"`skip_steps` must be in [0, {spe}). Received: skip_steps={skip_steps!r}")
    source, encoded, by_file = _epoch_source(dataset, int(epoch), cache, num_shards, shard_index)
    per_pipeline = global_batch // num_shards
    buffer = max(1, min(dataset.num_train // (num_shards if by_file else 1), shuffle_buffer))
    # Python-int seeds only: a tensor seed breaks tf.data when the global seed is 0.
    ds = source.shuffle(buffer, seed=(int(seed) * 1_000_003 + int(epoch)) % (2 ** 31 - 1),
                        reshuffle_each_iteration=False).repeat()
    if by_file:
        ds = ds.skip(skip_steps * per_pipeline)
    else:
        ds = ds.skip(skip_steps * global_batch)
        if num_shards > 1:
            ds = ds.shard(num_shards, shard_index)
    ds = decoding.decode_skipping(dataset, ds) if encoded else (
        ds if cache is not None else decoding.with_boxes(ds))
    ds = ds.take((spe - skip_steps) * per_pipeline)
    num_classes = dataset.num_classes
    boxes = dataset.boxes

    def prep(image, label, bboxes):
        image = preprocessing.preprocess_for_train(image, image_size, image_size,
                                                   min_crop_area=min_crop_area,
                                                   color_distortion=color_distortion,
                                                   bboxes=bboxes if boxes else None)
        return (image, tf.one_hot(label, num_classes)) if dataset.labelled else image

    ds = ds.map(prep, num_parallel_calls=_AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=True).prefetch(_AUTOTUNE)
    return _no_auto_shard(ds, tf.data.experimental.AutoShardPolicy.OFF)


def eval_input(dataset, *, batch_size, image_size, cache=None, source=None, labels=True):
    """Validation batches ``(images, one_hot_labels)``, each example once, in order (files that
    cannot be decoded left out and named, as in :func:`train_input`). Under a multi-worker
    strategy the examples are split between the workers (``AutoShardPolicy.DATA``).
    ``labels=False``: batches of images alone (images without labels, e.g. the training images
    of an unlabelled folder, whose class count may be unknown)."""
    source = _decoded_source(dataset, source if source is not None else dataset.validation_source,
                             cache, validation=True)
    if source is None:
        raise DatasetError(f"{dataset.spec} has no validation data (pass a validation fraction > 0)")
    num_classes = dataset.num_classes

    def prep(image, label, boxes):
        image = preprocessing.preprocess_for_eval(image, image_size, image_size)
        return (image, tf.one_hot(label, num_classes)) if labels else image

    ds = source.map(prep, num_parallel_calls=_AUTOTUNE).batch(batch_size).prefetch(_AUTOTUNE)
    return _no_auto_shard(ds, tf.data.experimental.AutoShardPolicy.DATA)
