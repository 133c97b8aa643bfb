//! Training: steppers (GD, SGD, momentum, Adam), the adaptive gradient-flow integrator,
//! schedules, observers and the runner that owns the loop.

pub mod ode;
