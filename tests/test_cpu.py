"""Usable CPUs: affinity and cgroup quota, read from files we control."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from unirun import _cpu

if TYPE_CHECKING:
    from pathlib import Path


def test_cgroup_v2_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert _cpu.cgroup_cpu_limit(tmp_path) == 1.5


def test_cgroup_v2_unlimited(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert _cpu.cgroup_cpu_limit(tmp_path) is None


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert _cpu.cgroup_cpu_limit(tmp_path) == 3.0


def test_cgroup_v1_unlimited(tmp_path: Path) -> None:
    (tmp_path / "cpu.cfs_quota_us").write_text("-1\n")
    (tmp_path / "cpu.cfs_period_us").write_text("100000\n")
    assert _cpu.cgroup_cpu_limit(tmp_path) is None


def test_no_cgroup_files_means_no_limit(tmp_path: Path) -> None:
    assert _cpu.cgroup_cpu_limit(tmp_path) is None


def test_usable_cpus_takes_the_smaller_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_cpu, "_affinity_cpus", lambda: 8)
    monkeypatch.setattr(_cpu, "cgroup_cpu_limit", lambda: 2.5)
    assert _cpu.usable_cpus() == 3
    monkeypatch.setattr(_cpu, "cgroup_cpu_limit", lambda: None)
    assert _cpu.usable_cpus() == 8
    monkeypatch.setattr(_cpu, "cgroup_cpu_limit", lambda: 0.2)
    assert _cpu.usable_cpus() == 1


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux affinity")
def test_usable_cpus_respects_affinity() -> None:
    assert _cpu.usable_cpus() <= len(os.sched_getaffinity(0))
