//! Exit statuses shared by every airlock command (to be filled).
