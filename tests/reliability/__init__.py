"""Reliability, crash-safety and hostile-input suite (marker ``reliability``)."""
