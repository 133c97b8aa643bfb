//! Theory modules: one per paper (closed forms, limiting algorithms, predictions).

pub mod agf;
pub mod agf_attention;
pub mod agf_modular;
