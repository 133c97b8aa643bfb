//! Theory modules, one per paper.

pub mod unlearning;
