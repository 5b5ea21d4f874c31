"""Write TF-slim / Model Garden ImageNet-style TFRecord shards from an image folder.

    python -m mobilenet_tf.write_tfrecords --images=/data/photos --output=/data/photos_tfrecord
    python -m mobilenet_tf.write_tfrecords --images=/data/imagenet --output=/data/imagenet_tfrecord \\
        --train_shards=1024 --validation_shards=128

``--images`` is a folder in the layouts ``train.py`` reads: ``PATH/<class>/<images>``
(all of it becomes ``train-*``) or ``PATH/train/<class>/`` and ``PATH/val/<class>/``
(``train-*`` and ``validation-*``). Labels are 1..K in the sorted class order (0 is
TF-slim's background class), written with the class names to ``labels.txt``; PNG, BMP
and GIF images are re-encoded as JPEG, as TF-slim's ``build_imagenet_data.py`` does.
Files that cannot be decoded are left out and named. Each shard is written to a
temporary name and renamed when complete. Then ``train.py --dataset=tfrecord:OUTPUT``.

Exit status: 0 done; 2 refused before any work (one line); 1 failed while writing;
130 / 143 interrupted (finished shards stay, the one being written is removed). A thin
command over ``mobilenet_tf.data.tfrecords.write_shards``.
"""

import os
import signal
import sys

from mobilenet_tf import errors
from mobilenet_tf.cli import runner as runtime
from mobilenet_tf.cli import args as cli_args
from mobilenet_tf.utils import console
from mobilenet_tf.utils import native

__all__ = ["main"]

PROG = "python -m mobilenet_tf.write_tfrecords"


class _Stopped(errors.Interrupted):
    """SIGINT / SIGTERM while writing: the temporary shard is removed as the stack unwinds."""

    def __init__(self, signum):
        super().__init__(signum)
        self.args = (f"interrupted by {signal.Signals(signum).name}: the shard being written was "
                     "removed; finished shards stay (run the command again to write them all)",)


def _stop(signum):
    raise _Stopped(signum)


def main(argv=None):
    from mobilenet_tf.data.options import DEFAULT_FOLDER_FORMATS, FOLDER_FORMATS
    parser = cli_args.ArgumentParser(
        prog=PROG, description="Write TF-slim ImageNet-style TFRecord shards from an image folder.")
    parser.add_argument("--images", required=True,
                        help="the image folder: PATH/<class>/<images>, or PATH/train/<class>/ "
                             "and PATH/val/<class>/")
    parser.add_argument("--output", required=True,
                        help="folder for train-NNNNN-of-MMMMM, validation-... and labels.txt")
    parser.add_argument("--train_shards", type=cli_args.positive_int, default=None,
                        help="training shards (default: one per 1024 images, at least 1; "
                             "TF-slim's ImageNet uses 1024)")
    parser.add_argument("--validation_shards", type=cli_args.positive_int, default=None,
                        help="validation shards (default: one per 1024 images; ImageNet 128)")
    parser.add_argument("--folder_formats", default=",".join(DEFAULT_FOLDER_FORMATS),
                        help=f"image formats read, a subset of {','.join(FOLDER_FORMATS)} "
                             f"(default {','.join(DEFAULT_FOLDER_FORMATS)})")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the order in which files are dealt into shards (default 0)")
    args = parser.parse_args(argv)
    formats = tuple(f.strip() for f in args.folder_formats.split(",") if f.strip())
    if not formats or any(f not in FOLDER_FORMATS for f in formats):
        parser.error(f"argument --folder_formats: must be a comma-separated subset of "
                     f"{','.join(FOLDER_FORMATS)}. Received: --folder_formats={args.folder_formats!r}")
    return runtime.run_command(PROG, lambda: _new_folder_removed_on_failure(
        args.output, lambda: _run(args, formats)), _stop)


def _new_folder_removed_on_failure(folder, work):
    """``work()``; when it fails (a full disk) before any shard was finished, the output
    folder it created is removed again if it is empty (issue 27). An interrupt keeps it."""
    existed = os.path.exists(folder)
    try:
        return work()
    except Exception:
        if not existed and os.path.isdir(folder) and not os.listdir(folder):
            os.rmdir(folder)
        raise


def _run(args, formats):
    native.import_tensorflow()
    console.log_to()
    from mobilenet_tf.data import tfrecords
    from mobilenet_tf.data.readers import folder
    problem = tfrecords.output_problem(args.output, args.images)
    if problem:                                    # before the folder is scanned
        raise tfrecords.TFRecordError(problem)
    scan = folder.scan_folder(args.images, formats)
    splits = {"train": scan.train}
    if scan.validation is not None:
        splits["validation"] = scan.validation
    elif args.validation_shards is not None:
        raise tfrecords.TFRecordError(
            f"--validation_shards needs a val/ folder beside train/ in {args.images} (this folder "
            f"has the {scan.layout} layout). Received: --validation_shards={args.validation_shards}")
    wanted = {"train": args.train_shards, "validation": args.validation_shards}
    jobs = {split: (files, wanted[split] or max(1, min(len(files), -(-len(files) // 1024))))
            for split, files in splits.items() if files}
    written = tfrecords.write_shards(jobs, scan.class_names, args.output, seed=args.seed,
                                     progress=console.progress_verbosity() == 1,
                                     source=args.images)
    if written["removed"]:
        names = [os.path.basename(p) for p in written["removed"]]
        print(f"removed {len(names)} shard{'s' if len(names) != 1 else ''} of an earlier write "
              f"with another shard count: {', '.join(names)}")
    for path, reason in scan.skipped + written["skipped"]:
        print(f"left out {path}: {reason}", file=sys.stderr)
    left_out = len(scan.skipped) + len(written["skipped"])
    parts = [f"{written['examples'][split]} {split} examples in {len(paths)} shard"
             f"{'s' if len(paths) != 1 else ''} ({os.path.basename(paths[0])} ...)"
             for split, paths in written["shards"].items()]
    print(f"wrote {' and '.join(parts)} and {tfrecords.LABELS_FILE} ({len(scan.class_names)} "
          f"classes, labels 1..{len(scan.class_names)}) to {args.output}; left out {left_out} "
          f"file{'s' if left_out != 1 else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
