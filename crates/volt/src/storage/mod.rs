//! On-disk storage of shapes: append-only record files and the crash-safe file operations
//! they are built on. The format is described in `docs/storage-format.md`.

pub mod crashsafe;
pub mod journal;
pub mod records;
