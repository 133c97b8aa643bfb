//! Diagonal linear network: `f(x) = Σ_j u_j v_j x_j` (form `uv`) or
//! `f(x) = Σ_j (u_j² − v_j²) x_j` (form `u2_minus_v2`, Woodworth et al. 2020).
//!
//! The effective linear predictor is β = u ⊙ v (resp. u⊙u − v⊙v). AGF §3.1 (Kunin et al.
//! 2025) treats each coordinate (u_j, v_j) as one 2-homogeneous "neuron".
//!
//! Forward: F = X β (n × 1). Backward: g_β = Xᵀ dF, then ∂u = g_β ⊙ v, ∂v = g_β ⊙ u
//! (uv) or ∂u = 2u ⊙ g_β, ∂v = −2v ⊙ g_β (u2_minus_v2).

use super::{layout, Model, NeuronSum, ParamBlock, Workspace};
use crate::linalg::matmul;
use faer::{Accum, Mat, MatRef};
use serde::{Deserialize, Serialize};

/// Which diagonal parametrisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DiagonalForm {
    /// β = u ⊙ v
    #[default]
    Uv,
    /// β = u ⊙ u − v ⊙ v
    U2MinusV2,
}

/// Diagonal linear network (see module docs).
#[derive(Debug, Clone)]
pub struct Diagonal {
    pub d: usize,
    pub form: DiagonalForm,
    blocks: Vec<ParamBlock>,
}

impl Diagonal {
    /// Network on `d` inputs, scalar output.
    pub fn new(d: usize, form: DiagonalForm, lr_mult: f64) -> Self {
        let blocks = layout(vec![
            ("u".into(), vec![d], lr_mult),
            ("v".into(), vec![d], lr_mult),
        ]);
        Diagonal { d, form, blocks }
    }

    /// Effective linear predictor β(u, v).
    pub fn beta(&self, params: &[f64]) -> Vec<f64> {
        let (u, v) = params.split_at(self.d);
        match self.form {
            DiagonalForm::Uv => u.iter().zip(v).map(|(a, b)| a * b).collect(),
            DiagonalForm::U2MinusV2 => u.iter().zip(v).map(|(a, b)| a * a - b * b).collect(),
        }
    }
}

impl Model for Diagonal {
    fn name(&self) -> &'static str {
        "diagonal"
    }
    fn input_dim(&self) -> usize {
        self.d
    }
    fn output_dim(&self) -> usize {
        1
    }
    fn blocks(&self) -> &[ParamBlock] {
        &self.blocks
    }
    fn workspace(&self, n: usize) -> Workspace {
        Workspace::new(n, 1, vec![Mat::zeros(self.d, 1), Mat::zeros(self.d, 1)])
    }
    fn forward(&self, params: &[f64], x: MatRef<'_, f64>, ws: &mut Workspace) {
        assert_eq!(
            x.ncols(),
            self.d,
            "diagonal: input has {} columns, model expects d = {}",
            x.ncols(),
            self.d
        );
        let (u, v) = params.split_at(self.d);
        let beta = ws.bufs[0].col_as_slice_mut(0);
        for j in 0..self.d {
            beta[j] = match self.form {
                DiagonalForm::Uv => u[j] * v[j],
                DiagonalForm::U2MinusV2 => u[j] * u[j] - v[j] * v[j],
            };
        }
        matmul(
            ws.out.as_mut(),
            Accum::Replace,
            x,
            ws.bufs[0].as_ref(),
            1.0,
            ws.par,
        );
    }
    fn as_neuron_sum(&self) -> Option<&dyn NeuronSum> {
        Some(self)
    }
    fn backward(&self, params: &[f64], x: MatRef<'_, f64>, grad: &mut [f64], ws: &mut Workspace) {
        matmul(
            ws.bufs[1].as_mut(),
            Accum::Replace,
            x.transpose(),
            ws.d_out.as_ref(),
            1.0,
            ws.par,
        );
        let gb = ws.bufs[1].col_as_slice(0);
        let (u, v) = params.split_at(self.d);
        let (gu, gv) = grad.split_at_mut(self.d);
        for j in 0..self.d {
            match self.form {
                DiagonalForm::Uv => {
                    gu[j] = gb[j] * v[j];
                    gv[j] = gb[j] * u[j];
                }
                DiagonalForm::U2MinusV2 => {
                    gu[j] = 2.0 * u[j] * gb[j];
                    gv[j] = -2.0 * v[j] * gb[j];
                }
            }
        }
    }
}

/// Neuron j = (u_j, v_j): one coordinate, homogeneous of degree 2.
impl NeuronSum for Diagonal {
    fn num_neurons(&self) -> usize {
        self.d
    }
    fn homogeneity(&self) -> u32 {
        2
    }
    fn neuron_params(&self, i: usize) -> Vec<usize> {
        vec![i, self.d + i]
    }
}
