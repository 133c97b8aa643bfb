//! Adaptive explicit Runge–Kutta integration (being written).
