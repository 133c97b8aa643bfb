//! The training problem: model + data + loss + weight decay, with evaluation counters.

use crate::data::Dataset;
use crate::model::{Loss, Model, Workspace};
use faer::{Mat, Par};

/// What a stepper optimises: `L(θ) + (λ/2)‖θ‖²` on a dataset (full batch or minibatches),
/// with per-parameter learning-rate multipliers `r` from the model's blocks.
pub struct Problem<'a> {
    pub model: &'a dyn Model,
    pub data: &'a Dataset,
    pub loss: Loss,
    /// Weight decay λ: adds (λ/2)‖θ‖² to the objective and λθ to the gradient.
    pub weight_decay: f64,
    /// Per-parameter lr multipliers (expanded from the blocks).
    pub lr_mults: Vec<f64>,
    /// Number of gradient evaluations so far (full-batch or minibatch).
    pub grad_evals: u64,
    /// Number of loss-only evaluations (recording).
    pub loss_evals: u64,
    ws: Workspace,
    batch_ws: Option<Workspace>,
    batch_x: Mat<f64>,
    batch_y: Mat<f64>,
}

impl<'a> Problem<'a> {
    /// Full-batch problem on `data`.
    pub fn new(
        model: &'a dyn Model,
        data: &'a Dataset,
        loss: Loss,
        weight_decay: f64,
        par: Par,
    ) -> Self {
        let mut ws = model.workspace(data.n());
        ws.par = par;
        let mut lr_mults = vec![1.0; model.num_params()];
        for b in model.blocks() {
            lr_mults[b.range()].fill(b.lr_mult);
        }
        Problem {
            model,
            data,
            loss,
            weight_decay,
            lr_mults,
            grad_evals: 0,
            loss_evals: 0,
            ws,
            batch_ws: None,
            batch_x: Mat::zeros(0, 0),
            batch_y: Mat::zeros(0, 0),
        }
    }

    /// Join counts of the full-batch workspace's spinning helper (two threads on a batch
    /// whose step takes microseconds), if it has been started: how many passes ran on one
    /// thread because two measured slower ([`crate::spin_join::ModeProbe`]).
    pub fn join_stats(&self) -> Option<crate::spin_join::JoinStats> {
        self.ws.spin.stats()
    }

    /// Full-batch objective and gradient (written into `grad`).
    pub fn loss_grad(&mut self, params: &[f64], grad: &mut [f64]) -> f64 {
        self.grad_evals += 1;
        let l = self.model.loss_and_grad(
            params,
            self.data.x.as_ref(),
            self.data.y.as_ref(),
            self.loss,
            grad,
            &mut self.ws,
        );
        self.add_decay(params, grad) + l
    }

    /// Full-batch loss (without the weight-decay term): what is recorded as `loss`.
    pub fn data_loss(&mut self, params: &[f64]) -> f64 {
        self.loss_evals += 1;
        self.model.loss(
            params,
            self.data.x.as_ref(),
            self.data.y.as_ref(),
            self.loss,
            &mut self.ws,
        )
    }

    /// Objective and gradient on the minibatch given by sample indices `idx`
    /// (rows are gathered into preallocated buffers).
    pub fn loss_grad_batch(&mut self, params: &[f64], idx: &[usize], grad: &mut [f64]) -> f64 {
        let b = idx.len();
        let (d, c) = (self.data.d(), self.data.c());
        if self.batch_x.nrows() != b {
            self.batch_x = Mat::zeros(b, d);
            self.batch_y = Mat::zeros(b, c);
            let mut ws = self.model.workspace(b);
            ws.par = self.ws.par;
            self.batch_ws = Some(ws);
        }
        for j in 0..d {
            let src = self.data.x.col_as_slice(j);
            for (k, &i) in idx.iter().enumerate() {
                self.batch_x[(k, j)] = src[i];
            }
        }
        for j in 0..c {
            let src = self.data.y.col_as_slice(j);
            for (k, &i) in idx.iter().enumerate() {
                self.batch_y[(k, j)] = src[i];
            }
        }
        self.grad_evals += 1;
        let ws = self.batch_ws.as_mut().expect("batch workspace");
        let l = self.model.loss_and_grad(
            params,
            self.batch_x.as_ref(),
            self.batch_y.as_ref(),
            self.loss,
            grad,
            ws,
        );
        self.add_decay(params, grad) + l
    }

    fn add_decay(&self, params: &[f64], grad: &mut [f64]) -> f64 {
        if self.weight_decay == 0.0 {
            return 0.0;
        }
        let mut sq = 0.0;
        for (g, p) in grad.iter_mut().zip(params) {
            *g += self.weight_decay * p;
            sq += p * p;
        }
        0.5 * self.weight_decay * sq
    }
}
