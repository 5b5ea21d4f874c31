"""bench/cpu_features.py (the library's mobilenet_tf.utils.cpu): the line every benchmark table
and the trade-off table are printed under."""

import sys

from conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "bench"))
import cpu_features  # noqa: E402

AVX512_VNNI = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx512_vnni avx512_bf16 amx_tile
processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx512_vnni avx512_bf16 amx_tile
"""
AVX2_ONLY = """processor\t: 0
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx avx2 fma avx_vnni_not_a_flag
"""


def test_describe_names_the_cpu_and_each_instruction_set(tmp_path, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    (tmp_path / "a").write_text(AVX512_VNNI)
    (tmp_path / "b").write_text(AVX2_ONLY)
    assert cpu_features.describe(tmp_path / "a") == (
        "CPU: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz, 2 cores; AVX2 yes, AVX-512F yes, "
        "AVX-512 VNNI yes, AVX-VNNI no, AVX-512 BF16 yes, AMX yes")
    assert cpu_features.describe(tmp_path / "b") == (
        "CPU: AMD EPYC, 2 cores; AVX2 yes, AVX-512F no, AVX-512 VNNI no, AVX-VNNI no, "
        "AVX-512 BF16 no, AMX no")
    assert cpu_features.describe(tmp_path / "missing").endswith(
        "2 cores; instruction sets unknown (no /proc/cpuinfo)")
