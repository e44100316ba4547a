//! Per-turn workspace checkpoints for rewind (to be written).
