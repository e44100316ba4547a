//! containment
