//! Observers: metrics recorded at the schedule's times (argmin's `Observe`).

use super::problem::Problem;
use crate::linalg::norm2;

/// Computes named metric columns from the parameters at a recording time.
pub trait Observer: Send {
    /// Column names this observer appends to the trajectory.
    fn columns(&self) -> Vec<String>;
    /// Values for `columns()` at time `t` for parameters `params`.
    fn observe(
        &mut self,
        t: f64,
        params: &[f64],
        problem: &mut Problem<'_>,
    ) -> crate::Result<Vec<f64>>;
}

/// Full-batch data loss `loss` (always the first metric column).
pub struct LossObserver;

impl Observer for LossObserver {
    fn columns(&self) -> Vec<String> {
        vec!["loss".into()]
    }
    fn observe(
        &mut self,
        _t: f64,
        params: &[f64],
        problem: &mut Problem<'_>,
    ) -> crate::Result<Vec<f64>> {
        Ok(vec![problem.data_loss(params)])
    }
}

/// Frobenius norm of every parameter block: columns `norm_<block>` (e.g. `norm_W1`).
pub struct BlockNormObserver {
    names: Vec<String>,
    ranges: Vec<std::ops::Range<usize>>,
}

impl BlockNormObserver {
    pub fn new(problem: &Problem<'_>) -> Self {
        let blocks = problem.model.blocks();
        BlockNormObserver {
            names: blocks.iter().map(|b| format!("norm_{}", b.name)).collect(),
            ranges: blocks.iter().map(|b| b.range()).collect(),
        }
    }
}

impl Observer for BlockNormObserver {
    fn columns(&self) -> Vec<String> {
        self.names.clone()
    }
    fn observe(
        &mut self,
        _t: f64,
        params: &[f64],
        _problem: &mut Problem<'_>,
    ) -> crate::Result<Vec<f64>> {
        Ok(self
            .ranges
            .iter()
            .map(|r| norm2(&params[r.clone()]))
            .collect())
    }
}

/// Euclidean norm ‖θ_i‖ of every neuron of a [`crate::model::NeuronSum`] model: columns
/// `neuron_norm_<i>`. In the AGF picture a neuron is dormant while its norm stays O(α) and
/// active once it is O(1).
pub struct NeuronNormObserver {
    groups: Vec<Vec<usize>>,
}

impl NeuronNormObserver {
    /// `None` when the model is not a sum of homogeneous neurons.
    pub fn new(problem: &Problem<'_>) -> Option<Self> {
        let ns = problem.model.as_neuron_sum()?;
        Some(NeuronNormObserver {
            groups: (0..ns.num_neurons()).map(|i| ns.neuron_params(i)).collect(),
        })
    }
}

impl Observer for NeuronNormObserver {
    fn columns(&self) -> Vec<String> {
        (0..self.groups.len())
            .map(|i| format!("neuron_norm_{i}"))
            .collect()
    }
    fn observe(
        &mut self,
        _t: f64,
        params: &[f64],
        _problem: &mut Problem<'_>,
    ) -> crate::Result<Vec<f64>> {
        Ok(self
            .groups
            .iter()
            .map(|g| g.iter().map(|&k| params[k] * params[k]).sum::<f64>().sqrt())
            .collect())
    }
}
