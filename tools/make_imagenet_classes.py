"""Writes mobilenet_tf/model/imagenet_classes.tsv: the 1000 ImageNet-1k classes.

One line per class, in the order of the 1000-class head (the WordNet ids sorted,
as Keras and TFDS order them): ``wnid<TAB>lemmas``, e.g.
``n01440764<TAB>tench, Tinca tinca``. Line i is class i of a 1000-class head and
class i + 1 of TF-slim's 1001-class head (0 = background).

Sources (both Apache-2.0, both pip-installable; run offline, once):
  * the sorted WordNet ids: tensorflow-datasets,
    ``tensorflow_datasets/datasets/imagenet2012/labels.txt``, checked against
    timm's ``timm/data/_info/imagenet_synsets.txt``;
  * the names: timm (pytorch-image-models),
    ``timm/data/_info/imagenet_synset_to_lemma.txt`` (WordNet lemmas).

Usage:
  pip download timm --no-deps -d /tmp/timm
  python tools/make_imagenet_classes.py /tmp/timm/timm-*.whl
"""

import argparse
import os
import zipfile

import tensorflow_datasets

OUTPUT = os.path.join(os.path.dirname(__file__), "..", "mobilenet_tf", "model",
                      "imagenet_classes.tsv")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("timm_wheel", help="path to a timm wheel (pip download timm --no-deps)")
    args = parser.parse_args(argv)

    tfds_labels = os.path.join(os.path.dirname(tensorflow_datasets.__file__),
                               "datasets", "imagenet2012", "labels.txt")
    with open(tfds_labels) as f:
        wnids = [line.strip() for line in f if line.strip()]
    with zipfile.ZipFile(args.timm_wheel) as wheel:
        timm_wnids = wheel.read("timm/data/_info/imagenet_synsets.txt").decode().split()
        lemmas = dict(line.split("\t", 1) for line in
                      wheel.read("timm/data/_info/imagenet_synset_to_lemma.txt").decode().splitlines()
                      if "\t" in line)
    if len(wnids) != 1000 or wnids != sorted(wnids) or wnids != timm_wnids:
        raise SystemExit("tfds and timm disagree on the 1000 sorted ImageNet WordNet ids")
    lines = [f"{wnid}\t{lemmas[wnid].strip()}\n" for wnid in wnids]
    tmp = OUTPUT + ".tmp"
    with open(tmp, "w") as f:
        f.writelines(lines)
    os.replace(tmp, OUTPUT)
    print(f"wrote {len(lines)} classes to {os.path.normpath(OUTPUT)}")


if __name__ == "__main__":
    main()
