"""Parity metrics, the tolerance registry, the parity gate (and, later, timing and reports)."""
