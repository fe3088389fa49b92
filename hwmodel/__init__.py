"""Cycle, energy and area model of the LP accelerator (LPA) and baseline accelerators
(normative spec: HWMODEL.md; `lpq hwsim` is the command-line front end).

Modules, one job each:

- `systolic`   SCALE-Sim v3 closed forms: `gemm_stats(M, N, K, rows, cols, dataflow)` (§2)
- `lanes`      mixed-precision lane rule, products per PE-cycle P, K' = ⌈K/P⌉ (§3.1, §3.2)
- `workload`   GEMM records, batch scaling, gemms.csv and SCALE-Sim topology I/O (§1.1, §2.6)
- `extract`    trace a PyTorch model on `meta` into GEMM records (§1.2, §1.3; imports torch)
- `precision`  per-record operand precisions and the designs' precision rules (§1.4, §7.1)
- `config`     designs and profiles from conf/hw (§0, §7.1)
- `constants`, `scaling`   constant tables with sources, node scaling (§5.3, §5.4, §6.1)
- `memory`     SRAM/DRAM traffic and bandwidth stalls (§4)
- `energy`     table-driven energy engine and report groups (§5.1, §5.2)
- `area`       area model and iso-area array sizing (§6)
- `default28`, `ant_compat`, `bitfusion45`   the three profiles' per-record models (§7.2–§7.4)
- `ant_networks`  ANT's eight networks with the artifact's own per-layer precisions (§9 V4, V8)
- `dac24`, `paper`  the DAC'24 poster's peak-rate profile and the poster-vs-profiles comparison
- `simulate`, `report`        whole-workload runs, summary, normalisation, layers.csv, figure (§8)

`hwmodel` never imports `lpq.search` or `lpq.pipeline`.
"""
from .systolic import gemm_stats

__all__ = ["gemm_stats"]
