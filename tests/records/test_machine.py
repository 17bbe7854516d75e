"""The machine block's CPU fields: which CPU a run's wall time and numerics came from."""

from __future__ import annotations

import torch

from mdmtn.records import cpu_label
from mdmtn.records.machine import cpu_id, machine_info

# /proc/cpuinfo texts: ZEN3 as this project's 2-core VM writes it (flags shortened, a second
# processor's block changed so that reading it would show), XEON in the same format
ZEN3 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC
stepping\t: 1
flags\t\t: fpu vme avx avx2

processor\t: 1
vendor_id\t: AuthenticAMD
cpu family\t: 99
model\t\t: 99
model name\t: AMD EPYC
"""
XEON = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
stepping\t: 8
"""


def test_cpu_id_reads_the_first_processors_family_model_and_stepping():
    assert cpu_id(ZEN3) == "AuthenticAMD family 25 model 1 stepping 1"
    assert cpu_id(XEON) == "GenuineIntel family 6 model 143 stepping 8"
    assert cpu_id("") is None  # no /proc/cpuinfo (macOS, Windows)
    assert cpu_id("processor\t: 0\nmodel name\t: Apple M2\n") is None  # no family: nothing to say


def test_a_new_record_names_the_cpu_and_the_isa_torch_dispatches_to():
    m = machine_info()
    assert m["cpu_isa"] == torch.backends.cpu.get_cpu_capability()
    try:
        with open("/proc/cpuinfo") as f:
            family = next((ln.split(":")[1].strip() for ln in f if ln.startswith("cpu family")), None)
    except OSError:
        family = None
    assert (m["cpu_id"] is None) == (family is None)
    if family is not None:
        assert f"family {family} " in m["cpu_id"]
    assert cpu_label(m) == f"{m['cpu_model'] or 'unrecorded CPU'}, {m['cpu_isa']}"


def test_an_older_record_keeps_its_label_and_a_new_one_adds_the_isa():
    assert cpu_label(dict(cpu_model="AMD EPYC")) == "AMD EPYC"  # written before cpu_isa was recorded
    assert cpu_label(dict(cpu_model="AMD EPYC", cpu_isa="AVX512")) == "AMD EPYC, AVX512"
    assert cpu_label(None) == "unrecorded CPU" and cpu_label({}, "?") == "?"
