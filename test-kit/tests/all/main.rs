//! The test kit's own tests, and the seed servers' tests written with it. One binary, a
//! module per subject.

mod databases;
mod doc_example;
mod echo;
mod files;
mod kv;
mod kv_cache;
mod log;
mod mailbox;
mod mocks;
mod support;
