"""The shared layer every package builds on: settings and recipe parsing, one-line user errors, run identity
and locks, JSONL, model and dataset cards, and how checkpoints are loaded and what they carry."""
