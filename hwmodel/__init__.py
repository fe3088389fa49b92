"""Cycle, energy and area model of the LP accelerator (LPA) and baseline accelerators.

Planned per ../shared/spec/HWMODEL.md (issue: hwmodel); this package holds no code yet.
"""
