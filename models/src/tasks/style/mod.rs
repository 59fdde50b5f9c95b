//! The style task: its targets, losses built from graph ops, metrics and pictures.
