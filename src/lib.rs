//! Fovea
