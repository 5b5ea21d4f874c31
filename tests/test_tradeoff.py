"""python -m mobilenet_tf.tradeoff: the cost columns against the calculator and the paper, the
published accuracies against the flag files' quotes, the budget's choice on fixed latencies,
the chart read back from its PNG, the reuse of unchanged files, and its refusals (the
command's bad-input rows are in test_faults.py)."""

import csv
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO_ROOT
from mobilenet_tf.export import tradeoff
from mobilenet_tf.export import tradeoff_table as table_lib
from mobilenet_tf.model import costs
from mobilenet_tf.model import published as published_lib
from oracles import published

PAPER_16 = [(a, s) for a in (1.0, 0.75, 0.5, 0.25) for s in (224, 192, 160, 128)]
LABELS_16 = [f"{a}/{s}" for a, s in PAPER_16]

# The paper's printed figures (Tables 4-7): (architecture, α, size) -> (Million Mult-Adds,
# Million Parameters), compared as test_costs.py compares them (rounded or truncated).
PAPER_COSTS = {
    ("mobilenet_v1", 1.0, 224): (569, 4.2),      # Tables 4, 6 and 7
    ("mobilenet_v1", 0.75, 224): (325, 2.6),     # Tables 5 and 6
    ("mobilenet_v1", 0.5, 224): (149, 1.3),      # Table 6
    ("mobilenet_v1", 0.25, 224): (41, 0.5),
    ("mobilenet_v1", 1.0, 192): (418, 4.2),      # Table 7
    ("mobilenet_v1", 1.0, 160): (290, 4.2),
    ("mobilenet_v1", 1.0, 128): (186, 4.2),
    ("shallow_mobilenet", 1.0, 224): (307, 2.9),  # Table 5
}


def _csv_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# --- cost columns -------------------------------------------------------------------------------

def test_cost_columns_equal_costs_and_the_papers_tables(tmp_path):
    """The CSV the command writes (no latency, no chart: pure Python) holds, for the 16 and the
    Table 4/5 variants, exactly costs.count's integers, and those reproduce the paper's figures."""
    result = tradeoff.run_tradeoff(tmp_path, architectures=["mobilenet_v1", "conv_mobilenet",
                                                            "shallow_mobilenet"],
                                   latency=False, chart=False)
    rows = _csv_rows(result.outputs["csv"])
    assert len(rows) == 3 * 16
    assert [r["label"] for r in rows[:16]] == LABELS_16
    for r in rows:
        counted = costs.count(alpha=float(r["alpha"]), image_size=int(r["image_size"]),
                              conv_defs=r["architecture"])
        assert (int(r["mult_adds"]), int(r["params"])) == (counted.mult_adds, counted.params)
    by_key = {(r["architecture"], float(r["alpha"]), int(r["image_size"])): r for r in rows}
    for key, (mult_adds_m, params_m) in PAPER_COSTS.items():
        r = by_key[key]
        assert published(int(r["mult_adds"]), mult_adds_m, 0), (key, r["mult_adds"])
        assert published(int(r["params"]), params_m, 1), (key, r["params"])
    # Table 4's Conv MobileNet: 4866 printed, 4,867.29M counted (test_costs.py's exact figures).
    conv = by_key[("conv_mobilenet", 1.0, 224)]
    assert (int(conv["mult_adds"]), int(conv["params"])) == (4_867_293_184, 29_281_120)
    # The JSON holds the same integers.
    document = json.loads(open(result.outputs["json"], encoding="utf-8").read())
    assert [(d["mult_adds"], d["params"]) for d in document["rows"]] == [
        (int(r["mult_adds"]), int(r["params"])) for r in rows]


@pytest.mark.slow
def test_the_costs_only_run_imports_no_tensorflow(tmp_path):
    code = ("import sys; from mobilenet_tf import tradeoff; "
            f"status = tradeoff.main(['--no-latency', '--no-chart', '--output_dir={tmp_path}']); "
            "print('STATUS', status, 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO_ROOT, env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "STATUS 0 False False"
    assert "| 0.5/160 | 76.5 M | 1.32 M | 59.1 / 81.9 | 57.7 / 81.3 |  |" in out.stdout


# --- published accuracy -----------------------------------------------------------------------------

def test_published_accuracy_agrees_with_every_flag_files_quote():
    """flags/*.flags quote TF-slim's released top-1 and the paper's for the configuration each
    reproduces (written from those sources independently of the table in the package)."""
    released = paper = 0
    names = {"Conv": "conv_mobilenet", "Shallow": "shallow_mobilenet"}
    for path in sorted((REPO_ROOT / "flags").glob("*.flags")):
        comment = " ".join(line.lstrip("# ").strip() for line in path.read_text().splitlines()
                           if line.startswith("#"))
        for alpha, size, top1 in re.findall(
                r"released mobilenet_v1_([\d.]+)_(\d+) checkpoint[:,] top-1 ([\d.]+)%", comment):
            assert published_lib.published("mobilenet_v1", float(alpha), int(size)).top1 == \
                float(top1), path.name
            released += 1
        for alpha, size, top1 in re.findall(
                r'row "([\d.]+) MobileNet-(\d+)": published ImageNet top-1 ([\d.]+)%', comment):
            assert published_lib.published("mobilenet_v1", float(alpha), int(size)).paper_top1 \
                == float(top1), path.name
            paper += 1
        for name, top1 in re.findall(r'row "(Conv|Shallow) MobileNet": published ImageNet top-1 '
                                     r'([\d.]+)%', comment):
            assert published_lib.published(names[name], 1.0, 224).paper_top1 == float(top1)
            paper += 1
    assert (released, paper) == (16, 9)


def test_published_is_empty_where_nothing_was_published():
    assert published_lib.published("mobilenet_v1", 0.35, 224) == published_lib.Published()
    assert published_lib.published("mobilenet_v1", 1.0, 96) == published_lib.Published()
    assert published_lib.published("mobilenet_v1", 1.0, (224, 192)) == published_lib.Published()
    conv = published_lib.published("conv_mobilenet", 1.0, 224)
    assert (conv.top1, conv.top1_int8, conv.paper_top1) == (None, None, 71.7)
    assert conv.accuracy("float32") == 71.7 and conv.accuracy("int8") is None
    full = published_lib.published("mobilenet_v1", 0.5, 160)
    assert (full.accuracy("float32"), full.accuracy("int8")) == (59.1, 57.7)


# --- the budget -------------------------------------------------------------------------------------

def _fixed_rows():
    """The 16 and Shallow MobileNet 1.0/224, with latencies of Mult-Adds / 100 M per ms (int8 the
    same): 1.0/224 5.69 ms ... 0.25/128 0.14 ms; Shallow 1.9 ms."""
    configs = table_lib.grid() + table_lib.grid([1.0], [224], ["shallow_mobilenet"])
    rows = table_lib.rows_for(configs)
    for row in rows:
        ms = 1.9 if row.config.architecture == "shallow_mobilenet" else row.mult_adds / 1e8
        for precision in ("float32", "int8"):
            row.latency_ms[(precision, 1)] = ms
    return {row.config.label: row for row in rows}


@pytest.mark.parametrize("precision,budget,pick,next_up,unranked", [
    # Within 2 ms: 1.0/128 (1.86 ms, 65.2), 0.75/160 (1.66 ms, 65.3), Shallow (1.9 ms, 65.3 by the
    # paper: a tie, the faster wins), 0.5/224 ... ; the cheapest more accurate: 0.75/192 (2.39 ms).
    ("float32", 2.0, "0.75/160", "0.75/192", ()),
    # int8 ranks by the _quant checkpoints: 1.0/128 64.0 > 0.75/160 63.9; Shallow has none.
    ("int8", 2.0, "1.0/128", "0.75/192", ("shallow 1.0/224",)),
    ("float32", 0.1, None, "0.25/128", ()),           # nothing fits: the fastest
    ("float32", 10.0, "1.0/224", None, ()),           # everything fits: nothing more accurate
    ("float32", 5.0, "1.0/192", "1.0/224", ()),
    ("float32", 1.0, "0.5/160", "0.75/128", ()),      # 0.77 ms, 59.1; next 1.07 ms, 62.1
])
def test_budget_choice_on_fixed_latencies(precision, budget, pick, next_up, unranked):
    rows = _fixed_rows()
    choice = table_lib.choose(list(rows.values()), budget, precision, 1)
    assert (choice.pick and choice.pick.config.label) == pick
    assert (choice.next_up and choice.next_up.config.label) == next_up
    assert choice.unranked == unranked


def test_a_latency_equal_to_the_budget_is_within_it():
    rows = _fixed_rows()
    budget = rows["0.75/192"].latency_ms[("float32", 1)]       # 2.39 ms, exactly
    choice = table_lib.choose(list(rows.values()), budget, "float32", 1)
    assert choice.pick.config.label == "0.75/192"


def test_budget_lines_name_the_pick_and_the_next_one_up_with_its_cost():
    rows = list(_fixed_rows().values())
    table = table_lib.TradeoffTable(rows, precisions=("float32", "int8"), threads=(1,),
                                    budgets_ms=(2,))
    lines = [choice.describe() for choice in table.choices()]
    assert lines == [
        "float32, 1 thread, within 2 ms: 0.75/160 (top-1 65.3%, 1.66 ms); next up: 0.75/192 "
        "(top-1 67.2%, 2.39 ms)",
        "int8, 1 thread, within 2 ms: 1.0/128 (top-1 64.0%, 1.86 ms); next up: 0.75/192 (top-1 "
        "66.2%, 2.39 ms) (1 without a published top-1 not ranked)"]
    assert table_lib.choose(rows, 0.1, "float32", 1).describe() == (
        "float32, 1 thread, within 0.1 ms: nothing fits; the fastest: 0.25/128 (top-1 41.5%, "
        "0.14 ms)")
    several = table_lib.TradeoffTable(rows, precisions=("float32",), threads=(1,),
                                      budgets_ms=(1, 5)).text().splitlines()
    assert several[-5:] == [
        "Budget 1 ms (per precision and thread count):",
        "  float32, 1 thread, within 1 ms: 0.5/160 (top-1 59.1%, 0.77 ms); next up: 0.75/128 "
        "(top-1 62.1%, 1.07 ms)",
        "",
        "Budget 5 ms (per precision and thread count):",
        "  float32, 1 thread, within 5 ms: 1.0/192 (top-1 70.0%, 4.18 ms); next up: 1.0/224 "
        "(top-1 70.9%, 5.69 ms)"]
    document = json.loads(table.json_text())
    assert [(c["pick"]["label"], c["next_up"]["label"], c["next_up"]["latency_ms"])
            for c in document["choices"]] == [("0.75/160", "0.75/192", 2.3927),
                                              ("1.0/128", "0.75/192", 2.3927)]


# --- the chart --------------------------------------------------------------------------------------

def test_chart_png_shows_the_16_labels_in_every_panel_and_the_budget(tmp_path):
    """Read back from the PNG file: a PNG of the figure's size whose text chunk lists, per
    panel, the labels inside the image (read from the drawn figure) and the legend."""
    from PIL import Image
    import numpy as np
    from mobilenet_tf.export import tradeoff_chart
    rows = table_lib.rows_for(table_lib.grid())
    for i, row in enumerate(rows):
        for precision, factor in (("float32", 1.0), ("int8", 0.6)):
            row.latency_ms[(precision, 1)] = factor * row.mult_adds / 1e8
            row.latency_ms[(precision, 2)] = factor * row.mult_adds / 1.7e8
    table = table_lib.TradeoffTable(rows, precisions=("float32", "int8"), threads=(1, 2),
                                    budgets_ms=(2, 5), cpu="CPU: test", caption="fixed latencies")
    png, shown = tradeoff_chart.draw(table, dpi=80)
    path = tmp_path / "chart.png"
    path.write_bytes(png)
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (round(2 * 6.2 * 80), round((2 * 5.0 + 0.7) * 80))
        read = json.loads(image.text[tradeoff_chart.LABELS_KEY])
        pixels = np.asarray(image.convert("L"))
    assert read == shown
    assert list(read) == ["mult_adds", "params", "latency_1_threads", "latency_2_threads"]
    for panel in ("mult_adds", "params"):
        assert sorted(read[panel]["labels"]) == sorted(LABELS_16)
        assert read[panel]["legend"] == ["α = 1.0", "α = 0.75", "α = 0.5", "α = 0.25"]
    for panel in ("latency_1_threads", "latency_2_threads"):
        assert sorted(read[panel]["labels"]) == sorted(LABELS_16 * 2)     # float32 and int8
        assert read[panel]["legend"] == ["float32 (top-1 of the float checkpoint)",
                                         "int8 (top-1 of the _quant checkpoint)", "budget 2 ms",
                                         "budget 5 ms"]
    assert (pixels < 128).mean() > 0.01          # drawn, not blank


def test_chart_without_a_published_top1_leaves_the_row_out():
    from mobilenet_tf.export import tradeoff_chart
    rows = table_lib.rows_for(table_lib.grid([0.5, 0.35], [160]))
    _, shown = tradeoff_chart.draw(table_lib.TradeoffTable(rows), dpi=40)
    assert shown == {"mult_adds": {"labels": ["0.5/160"], "legend": ["α = 0.5"]},
                     "params": {"labels": ["0.5/160"], "legend": ["α = 0.5"]}}


def test_missing_matplotlib_is_one_line_with_the_install_command(tmp_path, monkeypatch, capsys):
    import importlib.util
    from mobilenet_tf import tradeoff as command
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    status = command.main(["--no-latency", f"--output_dir={tmp_path}/out"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and err == [
        "python -m mobilenet_tf.tradeoff: error: drawing the chart needs matplotlib, an optional "
        "extra: pip install 'mobilenet-tf[plot]' (or leave the chart out)"]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kwargs,pattern", [
    (dict(alphas=[1.0, -0.5]), r"`alpha` \(the width multiplier α\) must be a number > 0\. "
                               r"Received: alpha=-0\.5"),
    (dict(image_sizes=[224, 16]), r"`image_size` must be at least 32x32 .*Received: image_size=16"),
    (dict(architectures=["resnet"]), r"`architecture` must be one of mobilenet_v1, "
                                     r"conv_mobilenet, shallow_mobilenet\. Received: "
                                     r"architecture='resnet'"),
    (dict(precisions=["float16"]), r"`precision` must be one or more of float32, int8\. "
                                   r"Received: precision=\['float16'\]"),
    (dict(budget_ms=0), r"`budget_ms` .* must be a number > 0\. Received: budget_ms=0"),
    (dict(budget_ms=float("nan")), r"Received: budget_ms=nan"),
    (dict(budget_ms=[2, -1.5]), r"must be a number > 0\. Received: budget_ms=-1\.5"),
    (dict(budget_ms=2, latency=False), r"`budget_ms` needs the latency measured"),
    (dict(threads=[0]), r"`threads` must be an int >= 1\. Received: threads=0"),
    (dict(calibration="folder:/nowhere/x", precisions=["int8"]),
     r"`calibration` folder /nowhere/x does not exist"),
])
def test_refusals_before_any_work(tmp_path, kwargs, pattern):
    """Each refused before any work; around it, the smallest grid (so that a refusal that
    breaks costs seconds, not the full grid)."""
    from mobilenet_tf.errors import InputError
    kwargs = dict(dict(alphas=[0.25], image_sizes=[32], precisions=["float32"], threads=[1],
                       rounds=1, runs=1, latency=True, chart=False), **kwargs)
    with pytest.raises(InputError, match=pattern):
        tradeoff.run_tradeoff(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


# --- the files, their reuse and their latency -------------------------------------------------------

def _stat(path):
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns


def test_files_are_made_timed_and_reused_when_unchanged(tmp_path):
    from mobilenet_tf.export import tflite
    from mobilenet_tf.export import tradeoff_files
    from mobilenet_tf.utils import cpu
    folder = tmp_path / "grid"
    settings = dict(alphas=[0.25], image_sizes=[32], threads=[1], chart=False, rounds=1, runs=2,
                    num_calibration_images=2, budget_ms=1000)
    first = tradeoff.run_tradeoff(folder, **settings)
    names = ["mobilenet_v1_0.25_32_float32.tflite", "mobilenet_v1_0.25_32_int8.tflite"]
    assert sorted(os.listdir(folder)) == sorted(names + ["manifest.json", "tradeoff.csv",
                                                         "tradeoff.json"])
    assert [entry.reused for entry in first.files.values()] == [False, False]
    float32 = tflite.TFLiteClassifier(str(folder / names[0]))
    int8 = tflite.TFLiteClassifier(str(folder / names[1]))
    assert (float32.image_size, float32.input_dtype, float32.num_classes) == ((32, 32), "uint8", 1000)
    assert int8.input_quantization[0] > 0 and int8.input_kind == "raw_rgb"
    (row,) = _csv_rows(folder / "tradeoff.csv")
    assert int(row["float32_bytes"]) == os.path.getsize(folder / names[0])
    assert int(row["int8_bytes"]) == os.path.getsize(folder / names[1])
    assert float(row["float32_1_threads_ms"]) > 0 and float(row["int8_1_threads_ms"]) > 0
    document = json.loads((folder / "tradeoff.json").read_text())
    assert document["cpu"] == cpu.describe()
    # 0.25/32 has no published top-1: nothing to choose, and the line says why.
    assert row["top1"] == "" and document["choices"][0]["pick"] is None
    assert document["choices"][0]["line"].endswith("(1 without a published top-1 not ranked)")
    assert any("random weights" in note and "2 synthetic random images" in note
               for note in document["notes"])
    stats = {name: _stat(folder / name) for name in names}

    # The same settings again: both files reused as they are.
    second = tradeoff.run_tradeoff(folder, **settings)
    assert [entry.reused for entry in second.files.values()] == [True, True]
    assert {name: _stat(folder / name) for name in names} == stats

    # A file whose bytes changed, and a setting of the other one changed: both made again.
    with open(folder / names[0], "ab") as f:
        f.write(b"tampered")
    third = tradeoff.run_tradeoff(folder, **dict(settings, num_calibration_images=3))
    assert [entry.reused for entry in third.files.values()] == [False, False]
    manifest = tradeoff_files.read_manifest(folder)
    assert manifest[names[1]]["settings"]["num_calibration_images"] == 3
    tflite.TFLiteClassifier(str(folder / names[0]))      # whole again
    assert os.path.getsize(folder / names[0]) == manifest[names[0]]["bytes"]


def test_markdown_table_has_a_column_per_precision_and_thread_count():
    rows = list(_fixed_rows().values())[:1]
    rows[0].file_bytes.update({"float32": 12_561_028, "int8": 3_389_096})
    text = table_lib.TradeoffTable(rows, precisions=("float32", "int8"), threads=(1,)).markdown()
    header, rule, line = text.splitlines()
    assert header == ("| α/ρ | Mult-Adds | parameters | top-1 / top-5 | int8 top-1 / top-5 | "
                      "paper top-1 | float32 file | int8 file | float32 1 thread | int8 1 thread |")
    assert line == ("| 1.0/224 | 568.7 M | 4.21 M | 70.9 / 89.9 | 69.7 / 89.5 | 70.6 (Tables 4, 6, 7) "
                    "| 12,267 KiB | 3,310 KiB | 5.69 ms | 5.69 ms |")


def test_interleaved_latency_is_the_median_of_round_medians_taken_in_turns():
    from mobilenet_tf.export import latency
    calls = []

    class Runner:
        def __init__(self, name, times):
            self.name, self.times = name, iter(times)

        def latency_ms(self, image=None, *, runs, warmup):
            calls.append((self.name, runs))
            return next(self.times)

    runners = {"a": Runner("a", [99, 5, 1, 3]), "b": Runner("b", [99, 20, 40, 10])}
    medians = latency.interleaved_latency(runners, rounds=3, runs=4, warmup=2)
    assert medians == {"a": 3, "b": 20}              # the warm-up's 99 left out
    assert calls == [("a", 2), ("b", 2)] + [("a", 4), ("b", 4)] * 3
    with pytest.raises(ValueError, match=r"`rounds` must be an int >= 1\. Received: rounds=0"):
        latency.interleaved_latency(runners, rounds=0)
