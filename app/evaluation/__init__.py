"""Evaluation: labelled query files, the systems compared, metrics, scoring and reports."""
