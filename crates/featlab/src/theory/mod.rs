//! Theory modules: closed-form predictions, one module per paper / application.

pub mod agf;
pub mod agf_attention;
pub mod agf_modular;
