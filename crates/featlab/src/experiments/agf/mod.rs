//! The AGF paper's studies (Kunin et al. 2025): one file per study.
//!
//! * [`two_layer`] — the `agf` kind: diagonal, fully connected linear, ReLU and quadratic
//!   two-layer nets (generated problems or the user's own `x.npy`/`y.npy`), numerical AGF
//!   against gradient flow from the same initialisation.
//! * [`attention`] — attention-only linear transformers on in-context regression.
//! * [`modular`] — quadratic nets on modular addition (Fourier features).
//! * [`compare`] — the per-study pieces shared by the three (refined schedules, drops.csv);
//!   the comparison itself is [`crate::compare::drops`].

pub mod attention;
pub mod compare;
pub mod modular;
#[cfg(test)]
mod relu_probe;
pub mod two_layer;
