"""Metrics per task; classification uses torchmetrics."""
