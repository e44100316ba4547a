//! The prompt editor (to be written).
