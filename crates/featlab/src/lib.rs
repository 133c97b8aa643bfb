//! # featlab
//!
//! The science of feature learning in neural networks, runnable: for each of five papers
//! (Alternating Gradient Flows; the exact finite-width solution of a linear net on 1-D
//! data; the Neural Feature Ansatz as alignment; NFA in deep linear nets; feature
//! unlearning at infinite width) featlab computes the theory, runs the experiment and
//! compares the two.
//!
//! Layout: [`model`] (architectures with hand-written gradients), [`data`] (datasets,
//! generators, loaders), [`train`] (steppers, the adaptive gradient-flow integrator,
//! observers, the runner), [`theory`] (one module per paper), [`experiment`] (config →
//! run → results), [`figure`] (plot specifications rendered by the CLI).

pub mod analysis;
pub mod array;
pub mod compare;
pub mod config;
pub mod data;
pub mod error;
pub mod experiments;
pub mod figure;
pub mod groups;
pub mod linalg;
pub mod model;
pub mod output;
pub mod presets;
pub mod rng;
pub mod spin_join;
pub mod sweep;
pub mod theory;
pub mod train;
pub mod vexp;

pub use array::NdArray;
pub use error::{Error, Result};
