"""Training on many devices and machines with ``tf.distribute``: strategies, clusters, who writes.

``train.py --distribution_strategy=NAME`` picks one of :data:`STRATEGIES`:

* ``default``: TensorFlow's default strategy (no distribution; one GPU if
  there is one, else the CPU).
* ``one_device``: ``OneDeviceStrategy`` on the first GPU, else the CPU.
* ``mirrored``: ``MirroredStrategy`` over every local GPU (or the given
  devices): synchronous data parallelism on one machine.
* ``multi_worker_mirrored``: ``MultiWorkerMirroredStrategy`` over the
  machines listed in the ``TF_CONFIG`` environment variable (the same
  command on every machine, each with its own ``task``); synchronous
  all-reduce across workers.
* ``tpu``: ``TPUStrategy`` on the TPU named by ``--tpu`` (``local`` on a
  TPU VM).

``parameter_server`` (the paper's asynchronous gradient descent) is not
offered: Keras 3's ``Model.fit`` has no ``ParameterServerStrategy`` support
(tf.keras 2 ran it through a ``ClusterCoordinator`` that Keras 3 does not
have), see :data:`PARAMETER_SERVER_UNSUPPORTED`.

Rules every strategy follows (the parts of ``mobilenet_tf.training`` (``loop``,
``recipe``, ``evaluation``) that use this module):

* ``batch_size`` is the **global** batch, split evenly over the replicas
  (:func:`per_replica_batch_size` refuses a batch that does not divide);
  the learning rate scales with the global batch
  (``schedule.scaled_learning_rate``: ``base_learning_rate * batch_size /
  base_batch_size``), so the same flags give the same recipe on
  1 or 64 replicas.
* Model, optimizer, metrics and checkpoint are created in
  ``strategy.scope()``.
* Only the chief (:func:`is_chief`: task ``chief``, or ``worker`` 0 when the
  cluster has no ``chief``) writes into ``model_dir``. The other workers
  still take part in every save (saving reads distributed variables, which
  can be a collective operation all workers must join), but into a
  temporary directory of their own that :func:`write_dir` removes when
  training ends, successfully or not; this is the practice of Keras'
  multi-worker guide. A resumed run restores every worker from the chief's
  newest checkpoint in ``model_dir``, which all workers must be able to
  read (a shared file system or bucket, as with any multi-worker training).
* Each worker reads its own shard of the training examples
  (:func:`input_shards`; ``loop`` feeds ``fit`` through
  ``strategy.distribute_datasets_from_function``), never the same examples
  as another worker.

Checks that need no TensorFlow (:func:`check_options`, :func:`parse_tf_config`)
let ``train.py`` reject a bad combination in a fraction of a second, before
TensorFlow starts. This module reads no flags.
"""

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile

from mobilenet_tf.errors import InputError
from mobilenet_tf.utils import backend

__all__ = ["STRATEGIES", "PARAMETER_SERVER_UNSUPPORTED", "DistributionError", "ClusterTask",
           "parse_tf_config", "check_options", "create_strategy", "num_replicas", "is_chief",
           "task_of", "per_replica_batch_size", "write_dir", "input_shards",
           "WORKER_TEMP_PREFIX"]

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker_mirrored", "tpu")
PARAMETER_SERVER_UNSUPPORTED = (
    "parameter_server is not offered: Keras 3's Model.fit does not support "
    "tf.distribute.ParameterServerStrategy (tf.keras 2 drove it with a ClusterCoordinator, which "
    "Keras 3 does not have); use multi_worker_mirrored (synchronous all-reduce) instead")
WORKER_TEMP_PREFIX = "mobilenet_tf_worker_"
_CLUSTER_JOBS = ("chief", "worker")       # what MultiWorkerMirroredStrategy trains with


class DistributionError(InputError):
    """A bad strategy / cluster / batch combination. One-line message, raised before training."""


@dataclasses.dataclass(frozen=True)
class ClusterTask:
    """This process's place in a ``TF_CONFIG`` cluster."""
    cluster: dict             # job name -> list of "host:port"
    task_type: str
    task_index: int

    @property
    def num_workers(self):
        """Training processes in the cluster (chief + workers)."""
        return sum(len(self.cluster.get(job, ())) for job in _CLUSTER_JOBS)

    @property
    def is_chief(self):
        """Keras' rule: the ``chief`` task, or ``worker`` 0 when there is no ``chief``."""
        if self.task_type == "chief":
            return True
        return self.task_type == "worker" and self.task_index == 0 and "chief" not in self.cluster


def parse_tf_config(text):
    """The :class:`ClusterTask` of a ``TF_CONFIG`` value; None for None or empty.

    Raises DistributionError (one line) for malformed JSON, a missing or
    empty ``cluster``, addresses that are not ``host:port``, a missing
    ``task``, or a task that is not in the cluster.
    """
    if text is None or not text.strip():
        return None
    shown = " ".join(text.split())
    shown = shown if len(shown) <= 200 else shown[:197] + "..."
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise DistributionError(f"TF_CONFIG is not valid JSON ({e.msg} at character {e.pos}). "
                                f"Received: TF_CONFIG={shown}") from None
    if not isinstance(config, dict):
        raise DistributionError(f"TF_CONFIG must be a JSON object with 'cluster' and 'task'. "
                                f"Received: TF_CONFIG={shown}")
    cluster = config.get("cluster")
    if not isinstance(cluster, dict) or not cluster:
        raise DistributionError("TF_CONFIG needs a non-empty 'cluster', e.g. {\"worker\": "
                                f"[\"host1:2222\", \"host2:2222\"]}}. Received: TF_CONFIG={shown}")
    for job, addresses in cluster.items():
        if (not isinstance(addresses, list) or not addresses
                or not all(isinstance(a, str) and a.rpartition(":")[2].isdigit() for a in addresses)):
            raise DistributionError(f"TF_CONFIG cluster job {job!r} must be a non-empty list of "
                                    f"'host:port' addresses. Received: TF_CONFIG={shown}")
    task = config.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise DistributionError("TF_CONFIG needs this process's 'task', e.g. {\"type\": \"worker\", "
                                f"\"index\": 0}}. Received: TF_CONFIG={shown}")
    task_type, index = task["type"], task["index"]
    if task_type not in cluster:
        raise DistributionError(f"TF_CONFIG task type {task_type!r} is not a job of the cluster "
                                f"{sorted(cluster)}. Received: TF_CONFIG={shown}")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(cluster[task_type]):
        raise DistributionError(f"TF_CONFIG task index must be an int in [0, "
                                f"{len(cluster[task_type])}) for job {task_type!r}. "
                                f"Received: TF_CONFIG={shown}")
    return ClusterTask({k: list(v) for k, v in cluster.items()}, task_type, index)


def check_options(strategy, *, tpu=None, tf_config=None, mixed_precision="none"):
    """Rejects a bad combination before TensorFlow starts; returns the :class:`ClusterTask` or None.

    Args:
      strategy: one of :data:`STRATEGIES` (``parameter_server`` gets the
        reason it is not offered).
      tpu: the TPU name (``--tpu``); required by, and only allowed with, ``tpu``.
      tf_config: the ``TF_CONFIG`` text (None: not set).
      mixed_precision: ``none`` | ``bfloat16`` | ``float16``.

    Raises:
      DistributionError: one line naming the values and what is allowed.
    """
    if strategy == "parameter_server":
        raise DistributionError(f"{PARAMETER_SERVER_UNSUPPORTED}. Received: "
                                f"distribution_strategy={strategy!r}")
    if strategy not in STRATEGIES:
        raise DistributionError(f"distribution_strategy must be one of {', '.join(STRATEGIES)}. "
                                f"Received: distribution_strategy={strategy!r}")
    if strategy == "tpu":
        if not tpu:
            raise DistributionError("distribution_strategy=tpu needs --tpu=NAME (the TPU's name or "
                                    "gRPC address; 'local' on a TPU VM). Received: tpu=None")
        if mixed_precision == "float16":
            raise DistributionError("TPUs compute in bfloat16, not float16: use "
                                    "--mixed_precision=bfloat16 with distribution_strategy=tpu. "
                                    "Received: mixed_precision='float16'")
    elif tpu:
        raise DistributionError(f"--tpu is only used with distribution_strategy=tpu. Received: "
                                f"tpu={tpu!r}, distribution_strategy={strategy!r}")
    task = parse_tf_config(tf_config)
    if strategy == "multi_worker_mirrored":
        if task is None:
            raise DistributionError(
                "distribution_strategy=multi_worker_mirrored needs the TF_CONFIG environment "
                "variable, e.g. TF_CONFIG='{\"cluster\": {\"worker\": [\"host1:2222\", "
                "\"host2:2222\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}'. "
                "Received: TF_CONFIG unset")
        other = sorted(set(task.cluster) - set(_CLUSTER_JOBS))
        if "ps" in other:
            raise DistributionError(f"TF_CONFIG has 'ps' tasks but {PARAMETER_SERVER_UNSUPPORTED}. "
                                    f"Received: cluster jobs {sorted(task.cluster)}")
        if other:
            raise DistributionError(f"multi_worker_mirrored trains with 'chief' and 'worker' tasks "
                                    f"only (validation runs inside training). Received: cluster "
                                    f"jobs {sorted(task.cluster)}")
        if task.task_type not in _CLUSTER_JOBS:
            raise DistributionError(f"this process's TF_CONFIG task must be 'chief' or 'worker'. "
                                    f"Received: task type {task.task_type!r}")
    elif task is not None and strategy != "tpu" and sum(len(v) for v in task.cluster.values()) > 1:
        raise DistributionError(
            f"TF_CONFIG describes a cluster of {sum(len(v) for v in task.cluster.values())} tasks "
            f"but distribution_strategy={strategy} trains on this machine only: use "
            "multi_worker_mirrored, or unset TF_CONFIG")
    return task


def create_strategy(name, *, tpu=None, devices=None, tf_config=None):
    """The ``tf.distribute.Strategy`` called ``name`` (see the module docstring).

    Create it first thing in the program (``MultiWorkerMirroredStrategy``
    and ``TPUStrategy`` must exist before other TensorFlow operations run).

    Args:
      name: one of :data:`STRATEGIES`.
      tpu: TPU name for ``tpu``.
      devices: for ``mirrored``, the devices to mirror over (default: every
        local GPU, else the CPU); for ``one_device``, a list of one device.
      tf_config: the ``TF_CONFIG`` text to check (default: the environment's).

    Raises:
      DistributionError: a bad combination (see :func:`check_options`), or a
        TPU that cannot be reached.
    """
    tf_config = os.environ.get("TF_CONFIG") if tf_config is None else tf_config
    check_options(name, tpu=tpu, tf_config=tf_config)
    tf = backend.tensorflow(backend.DISTRIBUTE)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        if devices is not None and len(devices) != 1:
            raise DistributionError(f"one_device takes exactly one device. Received: devices={devices!r}")
        gpus = tf.config.list_logical_devices("GPU")
        device = devices[0] if devices else (gpus[0].name if gpus else "/cpu:0")
        return tf.distribute.OneDeviceStrategy(device)
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=list(devices) if devices else None)
    if name == "multi_worker_mirrored":
        return tf.distribute.MultiWorkerMirroredStrategy()
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError) as e:
        raise DistributionError(f"cannot reach TPU {tpu!r}: {' '.join(str(e).split())[:300]}. "
                                f"Received: tpu={tpu!r}") from None
    return tf.distribute.TPUStrategy(resolver)


def num_replicas(strategy):
    """Replicas that share each global batch."""
    return int(strategy.num_replicas_in_sync)


def task_of(strategy):
    """``(task_type, task_index)`` of this process in a multi-worker strategy, else ``(None, None)``."""
    resolver = getattr(strategy, "cluster_resolver", None)
    extended = getattr(strategy, "extended", None)
    in_multi_worker = getattr(extended, "_in_multi_worker_mode", lambda: False)()
    if resolver is None or not in_multi_worker:
        return None, None
    return resolver.task_type, resolver.task_id


def is_chief(strategy):
    """True if this process writes ``model_dir``: single-process strategies, or the cluster's chief."""
    task_type, index = task_of(strategy)
    if task_type is None:
        return True
    cluster = strategy.cluster_resolver.cluster_spec().as_dict()
    return ClusterTask(cluster, task_type, index).is_chief


def per_replica_batch_size(batch_size, replicas):
    """``batch_size // replicas``; DistributionError unless the global batch divides evenly."""
    if batch_size % replicas:
        lower = batch_size - batch_size % replicas
        raise DistributionError(
            f"batch_size (the global batch) must be divisible by the {replicas} replicas, e.g. "
            f"{lower or replicas} or {lower + replicas}. Received: batch_size={batch_size}")
    return batch_size // replicas


@contextlib.contextmanager
def write_dir(model_dir, chief, task_index=None):
    """Yields where this process writes: ``model_dir`` for the chief, else a fresh temporary dir.

    The chief's ``model_dir`` is not created here (training creates it once it starts, so a
    refused run leaves nothing). A non-chief worker's directory (under the system temp dir,
    prefix :data:`WORKER_TEMP_PREFIX`) is removed on exit, also when training fails.
    """
    if chief:
        yield model_dir
        return
    tag = f"{task_index}_" if task_index is not None else ""
    path = tempfile.mkdtemp(prefix=f"{WORKER_TEMP_PREFIX}{tag}")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def input_shards(input_context):
    """``(num_shards, shard_index)`` of an ``tf.distribute.InputContext`` (``(1, 0)`` for None).

    One shard per input pipeline, i.e. per worker: each worker reads every
    ``num_shards``-th example of the same seeded example order, so together
    the workers read each example once per epoch and the global batch at step
    s holds the same examples as on a single device.
    """
    if input_context is None:
        return 1, 0
    return int(input_context.num_input_pipelines), int(input_context.input_pipeline_id)


def distribute_input(strategy, dataset_fn, batch_size):
    """A distributed dataset of global batches of ``batch_size`` for ``Model.fit`` under ``strategy``.

    ``dataset_fn(per_replica_batch, num_shards, shard_index)`` returns one
    worker's ``tf.data.Dataset`` of per-replica batches, reading only shard
    ``shard_index`` of ``num_shards`` (:func:`input_shards`). With the default
    strategy this is ``dataset_fn(batch_size, 1, 0)`` itself.

    Raises:
      DistributionError: ``batch_size`` not divisible by the replica count.
    """
    tf = backend.tensorflow(backend.DISTRIBUTE)
    per_replica = per_replica_batch_size(batch_size, num_replicas(strategy))
    if not tf.distribute.has_strategy() and strategy is tf.distribute.get_strategy():
        return dataset_fn(batch_size, 1, 0)

    def fn(input_context):
        shards, index = input_shards(input_context)
        return dataset_fn(per_replica, shards, index)

    return strategy.distribute_datasets_from_function(fn)


def _symbolic_build_local(model, iterator=None, data_batch=None):
    """Keras' ``_maybe_symbolic_build`` with this worker's first batch (it only needs the shapes)."""
    tf = backend.tensorflow(backend.DISTRIBUTE)
    if iterator is not None:
        for _, _, it in iterator:
            batch = next(it)
            strategy = model.distribute_strategy
            data_batch = tf.nest.map_structure(
                lambda x: strategy.experimental_local_results(x)[0]
                if isinstance(x, tf.distribute.DistributedValues) else x, batch)
            break
    with model.distribute_strategy.scope():
        model._symbolic_build(data_batch=data_batch)


def _reduce_per_replica_multi_worker(original):
    tf = backend.tensorflow(backend.DISTRIBUTE)
    from keras.src.backend.tensorflow import trainer as tf_trainer

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(strategy):
            def mean(v):
                if isinstance(v, tf.distribute.DistributedValues) or tf.is_tensor(v):
                    # Scalars (losses, metrics) are averaged over replicas, batches along axis 0.
                    return strategy.reduce("MEAN", v, axis=None if v.shape.rank == 0 else 0)
                return v
            return tf.nest.map_structure(mean, values)
        return original(values, strategy, reduction)

    reduce_per_replica.mobilenet_tf_patched = True
    return reduce_per_replica


def patch_keras_for_multi_worker(model, strategy):
    """Lets Keras 3 ``Model.fit`` / ``evaluate`` run under a multi-worker ``MultiWorkerMirroredStrategy``.

    Keras 3.15's TensorFlow trainer fails there in two places
    (keras-team/keras#20585, tensorflow/tensorflow#72388: the TensorFlow
    tutorial's multi-worker Keras example does not run with Keras 3):

    1. ``fit`` and ``evaluate`` start by reducing the first input batch, an
       ``(images, labels)`` tuple, across replicas with one
       ``strategy.reduce`` call, only to build the model symbolically from
       its shapes; ``MultiWorkerMirroredStrategy`` cannot reduce a tuple
       ("Attempt to convert a value (PerReplica ...) with an unsupported
       type"), nor batches of different sizes (a last, partial validation
       batch). Replaced, on this model only, by this worker's own first
       batch, which has the shapes the build needs.
    2. Each step's logs are reduced with ``strategy.reduce("MEAN", v,
       axis=0)``, which fails for scalar losses and metrics ("Invalid
       reduction dimension 0 for input with 0 dimensions"). Replaced, for
       multi-worker strategies only, by the mean over replicas (``axis=None``)
       for scalars; every other case goes to Keras' own function.

    A no-op for every other strategy. Returns the model.
    """
    if task_of(strategy)[0] is None:
        return model
    from keras.src.backend.tensorflow import trainer as tf_trainer
    if not getattr(tf_trainer.reduce_per_replica, "mobilenet_tf_patched", False):
        tf_trainer.reduce_per_replica = _reduce_per_replica_multi_worker(
            tf_trainer.reduce_per_replica)
    model._maybe_symbolic_build = (
        lambda iterator=None, data_batch=None: _symbolic_build_local(model, iterator, data_batch))
    return model
