//! The fake registry of `tests/scrape/fake`, for test binaries outside `scrape/`.
#![allow(unused_imports)]

#[path = "../scrape/fake/mod.rs"]
mod fake;

pub use fake::*;
