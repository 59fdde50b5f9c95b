//! The detection task: its targets, losses built from graph ops, metrics and pictures.
