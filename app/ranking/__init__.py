"""Ranking and confidence: nearest texts -> entries, the intent head, calibration, answers. Core."""
