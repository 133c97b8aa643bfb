//! Theory: one module per paper. Each computes the paper's predictions on the same time
//! axis and in the same units as the experiments, so experiments can compare them.

pub mod agf;
pub mod exact_linear_1d;
pub mod group_agf;
pub mod nfa;
pub mod unlearning;
