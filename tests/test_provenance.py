"""Provenance: the CPU recorded beside every result names its microarchitecture, not only its marketing name."""

from __future__ import annotations

from pathlib import Path

from trajdiff.provenance import cpu_model

_ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
flags\t\t: fpu avx512f

processor\t: 1
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
"""


def test_cpu_model_names_family_and_model(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(_ZEN4)
    assert cpu_model(cpuinfo) == "AMD EPYC (family 25, model 17)"
    cpuinfo.write_text(_ZEN4.replace("cpu family\t: 25", "cpu family\t: 23").replace("model\t\t: 17", "model\t\t: 49"))
    assert cpu_model(cpuinfo) == "AMD EPYC (family 23, model 49)"


def test_cpu_model_without_family_is_the_name(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Neoverse-V2\nBogoMIPS\t: 2000.00\n")
    assert cpu_model(cpuinfo) == "Neoverse-V2"
    assert cpu_model(tmp_path / "missing")  # no /proc: what the platform module knows, never empty
