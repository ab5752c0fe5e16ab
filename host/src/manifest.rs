//! Manifest
