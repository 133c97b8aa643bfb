//! Training: steppers (GD, SGD, momentum, Adam), the adaptive gradient-flow integrator,
//! schedules, observers and the runner that owns the loop.

pub mod config;
pub mod layer_normalized;
pub mod observer;
pub mod ode;
pub mod problem;
pub mod runner;
pub mod schedule;
pub mod stepper;

pub use config::{Method, TrainConfig};
pub use observer::{BlockNormObserver, LossObserver, NeuronNormObserver, Observer};
pub use problem::Problem;
pub use runner::{
    run, Interrupt, NoProgress, Progress, RunContext, RunOptions, StopReason, TrainResult,
    Trajectory,
};
pub use schedule::Schedule;
pub use stepper::{Adam, Flow, GradientDescent, Momentum, Sgd, Stepper};
