//! Control
