//! Views of a session (to be written).
