"""What every reader gives the pipelines: the :class:`ImageDataset` interface.

A reader (``folder``, ``unlabelled``, ``tfrecord``, ``tfds``, ``synthetic``) finds its data and
returns a subclass of :class:`ImageDataset` holding its own fields; the pipelines
(``mobilenet_tf.data.pipeline``) read only what this class defines. The base class is also a
dataset of sources given directly (tests, benchmarks). Readers do not build pipelines, and the
pipelines do not know which reader made a dataset.
"""

import dataclasses
import logging
import threading

from mobilenet_tf.errors import InputError

__all__ = ["DatasetError", "PipelineState", "ImageDataset"]

logger = logging.getLogger(__name__)


class DatasetError(InputError):
    """The data named by a dataset spec is missing or unusable. One-line message (exit 2)."""


class PipelineState:
    """What the ``tf.data`` pipelines of one dataset keep between calls: the files they could
    not read or decode (each named once, in the order met), and the decoded training examples
    of each ``cache`` (one cached dataset for every epoch)."""

    def __init__(self, spec):
        self.spec = spec
        self.undecodable = []
        self.undecodable_validation = []     # of those, the validation pipelines' (issue 27)
        self.decoded = {}
        self._lock = threading.Lock()

    def report_undecodable_in_validation(self, name):
        """:meth:`report_undecodable` for a validation pipeline: also counted apart, so that
        the number of images validated leaves it out."""
        self.report_undecodable(name)
        name = name.numpy().decode("utf-8", "surrogateescape") if hasattr(name, "numpy") else name
        with self._lock:
            if name not in self.undecodable_validation:
                self.undecodable_validation.append(name)
        return False

    def validated(self, num_validation):
        """The validation examples scored: `num_validation` less those that could not be
        decoded."""
        return num_validation - len(self.undecodable_validation)

    def report_undecodable(self, name):
        """Names `name` (a file, or a shard and record) once; False (the pipeline's filter:
        the example is dropped). Called from ``tf.py_function``, on any thread."""
        name = name.numpy().decode("utf-8", "surrogateescape") if hasattr(name, "numpy") else name
        with self._lock:
            if name not in self.undecodable:
                self.undecodable.append(name)
                logger.warning(f"{self.spec}: skipped {name or 'an image'}: cannot be read or "
                               f"decoded ({len(self.undecodable)} skipped so far; training goes on)")
        return False


@dataclasses.dataclass(eq=False)
class ImageDataset:
    """A classification dataset, as :func:`mobilenet_tf.data.load_dataset` returns it.

    ``train_source`` / ``validation_source`` yield ``(image, label)`` before preprocessing, in
    a fixed order; ``image`` is encoded bytes, or a record ``{"path"}`` (a file read when
    decoded) or ``{"encoded", "name", "bbox"}`` (a TFRecord example), when ``encoded`` is True
    (decoded in the pipeline, in parallel), else a uint8 (h, w, 3) tensor.
    ``validation_source`` is None without validation data. ``num_classes`` and
    ``class_names`` are None for images without labels and no classes (``labelled`` False,
    label -1): the teacher's are set on it then. ``skipped``: ``[(path, reason)]`` of the
    files left out before training.
    """
    spec: str
    num_classes: int
    num_train: int
    num_validation: int
    train_source: object
    validation_source: object
    encoded: bool
    class_names: list = None
    skipped: list = dataclasses.field(default_factory=list)
    description: str = ""
    labelled: bool = True
    pipeline: PipelineState = dataclasses.field(init=False, repr=False)

    # The examples carry object boxes (``bbox``) that the training crop uses.
    boxes = False

    def __post_init__(self):
        self.pipeline = PipelineState(self.spec)

    def epoch_source(self, epoch):
        """The training examples of epoch `epoch`, in a fixed order (by default
        ``train_source`` for every epoch; readers of files read them in an order seeded by
        the epoch)."""
        return self.train_source

    def shard_source(self, epoch, num_shards, shard_index):
        """The training examples of input pipeline `shard_index` of `num_shards` in epoch
        `epoch` when the data splits by file (TFRecord shards), else None: then every
        pipeline reads every example and keeps every `num_shards`-th."""
        return None

    def save(self, directory):
        """Keeps in `directory` what finding the data learnt (a folder's manifest, shard
        counts), so that a resumed run need not learn it again; nothing by default."""
