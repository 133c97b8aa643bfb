//! Theory modules: one per paper (closed forms, limiting algorithms, predictions).

pub mod agf;
