//! Model configuration (`[model]` table of a run config) → a built [`Model`] and its
//! initial parameters.
//!
//! Every table rejects unknown keys. Initial weights of layer l are drawn i.i.d.
//! `N(0, (init_scale · s_l)²)` with `s_l` from the [`Parametrization`] (or `init_std[l]`
//! when given); forward multipliers are the parametrisation's `m_l` (or `multipliers[l]`),
//! the last one times `output_scale`; learning-rate multipliers are the parametrisation's
//! `r_l` times `lr_layers[l]`.

use super::deep_linear::DeepLinear;
use super::diagonal::{Diagonal, DiagonalForm};
use super::mlp::Mlp;
use super::parametrization::LayerScale;
use super::two_layer::TwoLayer;
use super::{Activation, Model, Parametrization};
use crate::linalg::{thin_svd, view};
use crate::rng::{normal_vec, Rng};
use crate::{Error, Result};
use faer::Mat;
use serde::{Deserialize, Serialize};

fn one() -> f64 {
    1.0
}

/// How the initial weights are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum InitKind {
    /// i.i.d. Gaussian with the per-layer std (see module docs).
    #[default]
    Gaussian,
    /// Balanced deep linear init, `W_{l+1}ᵀ W_{l+1} = W_l W_lᵀ` exactly (deep linear only):
    /// draw A (c × d) i.i.d. N(0, (init_scale·s)²), SVD A = U S Vᵀ, set
    /// W_1 = Q_1 S^{1/L} Vᵀ, W_l = Q_l S^{1/L} Q_{l−1}ᵀ, W_L = U S^{1/L} Q_{L−1}ᵀ with Q_l the
    /// first r columns of the identity (r = rank(A); needs hidden widths ≥ r).
    Balanced,
    /// AGF diagonal-net init (Kunin et al. 2025, §3.1): u_j = √2·init_scale, v_j = 0.
    Agf,
}

/// Shared per-layer options.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TwoLayerConfig {
    /// Hidden width m.
    pub width: usize,
    /// Activation σ.
    pub activation: Activation,
    /// Include first-layer biases b_i.
    #[serde(default)]
    pub bias: bool,
    /// Output scale κ (multiplies the output multiplier).
    #[serde(default = "one")]
    pub output_scale: f64,
    /// Width parametrisation (init std, multipliers, lr multipliers).
    #[serde(default)]
    pub parametrization: Parametrization,
    /// Global multiplier α on every initial std (small init: α ≪ 1).
    #[serde(default = "one")]
    pub init_scale: f64,
    /// Explicit per-layer init std `[W1, W2]` (overrides the parametrisation's, still × init_scale).
    #[serde(default)]
    pub init_std: Option<Vec<f64>>,
    /// Explicit per-layer forward multipliers `[m1, m2]` (overrides the parametrisation's).
    #[serde(default)]
    pub multipliers: Option<Vec<f64>>,
    /// Per-layer learning-rate factors `[r1, r2]`, multiplied into the parametrisation's.
    #[serde(default)]
    pub lr_layers: Option<Vec<f64>>,
}

/// Deep linear network options.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeepLinearConfig {
    /// Hidden widths `[k_1, …, k_{L−1}]` (depth L = len + 1).
    pub hidden: Vec<usize>,
    #[serde(default = "one")]
    pub output_scale: f64,
    #[serde(default)]
    pub parametrization: Parametrization,
    #[serde(default = "one")]
    pub init_scale: f64,
    /// `gaussian` or `balanced`.
    #[serde(default)]
    pub init: InitKind,
    #[serde(default)]
    pub init_std: Option<Vec<f64>>,
    #[serde(default)]
    pub multipliers: Option<Vec<f64>>,
    #[serde(default)]
    pub lr_layers: Option<Vec<f64>>,
}

/// Diagonal linear network options.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DiagonalConfig {
    /// `uv` (β = u⊙v) or `u2_minus_v2` (β = u⊙u − v⊙v).
    #[serde(default)]
    pub form: DiagonalForm,
    /// Initial scale α.
    #[serde(default = "one")]
    pub init_scale: f64,
    /// `gaussian` (u, v ~ N(0, α²)) or `agf` (u = √2α, v = 0).
    #[serde(default)]
    pub init: InitKind,
    #[serde(default = "one")]
    pub lr_mult: f64,
}

/// Deep MLP options.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MlpConfig {
    /// Hidden widths `[k_1, …, k_{L−1}]`.
    pub hidden: Vec<usize>,
    pub activation: Activation,
    #[serde(default)]
    pub bias: bool,
    #[serde(default = "one")]
    pub output_scale: f64,
    #[serde(default)]
    pub parametrization: Parametrization,
    #[serde(default = "one")]
    pub init_scale: f64,
    #[serde(default)]
    pub init_std: Option<Vec<f64>>,
    #[serde(default)]
    pub multipliers: Option<Vec<f64>>,
    #[serde(default)]
    pub lr_layers: Option<Vec<f64>>,
}

/// The `[model]` table: `kind` selects the architecture.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelConfig {
    TwoLayer(TwoLayerConfig),
    DeepLinear(DeepLinearConfig),
    Diagonal(DiagonalConfig),
    Mlp(MlpConfig),
}

crate::tagged_config_enum!(ModelConfig, "model", {
    "two_layer" => TwoLayer(TwoLayerConfig),
    "deep_linear" => DeepLinear(DeepLinearConfig),
    "diagonal" => Diagonal(DiagonalConfig),
    "mlp" => Mlp(MlpConfig),
});

fn check_len(key: &str, v: &Option<Vec<f64>>, want: usize) -> Result<()> {
    if let Some(v) = v {
        if v.len() != want {
            return Err(Error::config(
                format!("model.{key}"),
                format!("has {} entries but the network has {want} layers", v.len()),
            ));
        }
    }
    Ok(())
}

fn check_positive_widths(key: &str, w: &[usize]) -> Result<()> {
    if let Some(i) = w.iter().position(|&k| k == 0) {
        return Err(Error::config(
            format!("model.{key}"),
            format!("entry {i} is 0; widths must be ≥ 1"),
        ));
    }
    Ok(())
}

fn check_finite(key: &str, v: f64) -> Result<()> {
    if !v.is_finite() {
        return Err(Error::config(
            format!("model.{key}"),
            format!("must be finite, got {v}"),
        ));
    }
    Ok(())
}

/// Resolve per-layer (std, mult, lr) for a stack with the given fans.
fn scales(
    fans: &[(usize, usize)],
    p: Parametrization,
    init_std: &Option<Vec<f64>>,
    multipliers: &Option<Vec<f64>>,
    lr_layers: &Option<Vec<f64>>,
    output_scale: f64,
) -> Vec<LayerScale> {
    let l = fans.len();
    (0..l)
        .map(|i| {
            let mut s = p.layer(i, fans);
            if let Some(v) = init_std {
                s.std = v[i];
            }
            if let Some(v) = multipliers {
                s.mult = v[i];
            }
            if let Some(v) = lr_layers {
                s.lr_mult *= v[i];
            }
            if i + 1 == l {
                s.mult *= output_scale;
            }
            s
        })
        .collect()
}

impl ModelConfig {
    /// Build the model for inputs of dimension `d` and `c` outputs, and draw its initial
    /// parameters from `rng`.
    pub fn build(&self, d: usize, c: usize, rng: &mut Rng) -> Result<(Box<dyn Model>, Vec<f64>)> {
        if d == 0 || c == 0 {
            return Err(Error::Shape(format!(
                "data has d = {d} inputs and c = {c} outputs; both must be ≥ 1"
            )));
        }
        match self {
            ModelConfig::TwoLayer(cfg) => {
                if cfg.width == 0 {
                    return Err(Error::config("model.width", "must be ≥ 1"));
                }
                check_finite("output_scale", cfg.output_scale)?;
                check_finite("init_scale", cfg.init_scale)?;
                check_len("init_std", &cfg.init_std, 2)?;
                check_len("multipliers", &cfg.multipliers, 2)?;
                check_len("lr_layers", &cfg.lr_layers, 2)?;
                let fans = [(d, cfg.width), (cfg.width, c)];
                let s = scales(
                    &fans,
                    cfg.parametrization,
                    &cfg.init_std,
                    &cfg.multipliers,
                    &cfg.lr_layers,
                    cfg.output_scale,
                );
                let model = TwoLayer::new(d, cfg.width, c, cfg.activation, cfg.bias)
                    .multipliers(s[0].mult, s[1].mult)
                    .lr_mults(s[0].lr_mult, s[1].lr_mult);
                let mut p = normal_vec(rng, cfg.width * d, cfg.init_scale * s[0].std);
                if cfg.bias {
                    p.extend(std::iter::repeat_n(0.0, cfg.width));
                }
                p.extend(normal_vec(rng, c * cfg.width, cfg.init_scale * s[1].std));
                Ok((Box::new(model), p))
            }
            ModelConfig::DeepLinear(cfg) => {
                check_positive_widths("hidden", &cfg.hidden)?;
                let l = cfg.hidden.len() + 1;
                check_len("init_std", &cfg.init_std, l)?;
                check_len("multipliers", &cfg.multipliers, l)?;
                check_len("lr_layers", &cfg.lr_layers, l)?;
                let mut widths = vec![d];
                widths.extend(&cfg.hidden);
                widths.push(c);
                let fans: Vec<(usize, usize)> =
                    (0..l).map(|i| (widths[i], widths[i + 1])).collect();
                let s = scales(
                    &fans,
                    cfg.parametrization,
                    &cfg.init_std,
                    &cfg.multipliers,
                    &cfg.lr_layers,
                    cfg.output_scale,
                );
                let model = DeepLinear::new(
                    widths.clone(),
                    s.iter().map(|x| x.mult).collect(),
                    s.iter().map(|x| x.lr_mult).collect(),
                );
                let p = match cfg.init {
                    InitKind::Gaussian => {
                        let mut p = Vec::with_capacity(model.num_params());
                        for i in 0..l {
                            p.extend(normal_vec(
                                rng,
                                widths[i] * widths[i + 1],
                                cfg.init_scale * s[i].std,
                            ));
                        }
                        p
                    }
                    InitKind::Balanced => balanced_init(&widths, cfg.init_scale * s[0].std, rng)?,
                    InitKind::Agf => {
                        return Err(Error::config(
                            "model.init",
                            "`agf` init is for diagonal networks; use `gaussian` or `balanced`",
                        ))
                    }
                };
                Ok((Box::new(model), p))
            }
            ModelConfig::Diagonal(cfg) => {
                if c != 1 {
                    return Err(Error::Shape(format!(
                        "a diagonal network has one output but the targets have c = {c} columns"
                    )));
                }
                check_finite("init_scale", cfg.init_scale)?;
                let model = Diagonal::new(d, cfg.form, cfg.lr_mult);
                let p =
                    match cfg.init {
                        InitKind::Gaussian => normal_vec(rng, 2 * d, cfg.init_scale),
                        InitKind::Agf => {
                            let mut p = vec![std::f64::consts::SQRT_2 * cfg.init_scale; d];
                            p.extend(std::iter::repeat_n(0.0, d));
                            p
                        }
                        InitKind::Balanced => return Err(Error::config(
                            "model.init",
                            "`balanced` init is for deep linear networks; use `gaussian` or `agf`",
                        )),
                    };
                Ok((Box::new(model), p))
            }
            ModelConfig::Mlp(cfg) => {
                check_positive_widths("hidden", &cfg.hidden)?;
                let l = cfg.hidden.len() + 1;
                check_len("init_std", &cfg.init_std, l)?;
                check_len("multipliers", &cfg.multipliers, l)?;
                check_len("lr_layers", &cfg.lr_layers, l)?;
                let mut widths = vec![d];
                widths.extend(&cfg.hidden);
                widths.push(c);
                let fans: Vec<(usize, usize)> =
                    (0..l).map(|i| (widths[i], widths[i + 1])).collect();
                let s = scales(
                    &fans,
                    cfg.parametrization,
                    &cfg.init_std,
                    &cfg.multipliers,
                    &cfg.lr_layers,
                    cfg.output_scale,
                );
                let model = Mlp::new(
                    widths.clone(),
                    cfg.activation,
                    cfg.bias,
                    s.iter().map(|x| x.mult).collect(),
                    s.iter().map(|x| x.lr_mult).collect(),
                );
                let mut p = Vec::with_capacity(model.num_params());
                for i in 0..l {
                    p.extend(normal_vec(
                        rng,
                        widths[i] * widths[i + 1],
                        cfg.init_scale * s[i].std,
                    ));
                    if cfg.bias {
                        p.extend(std::iter::repeat_n(0.0, widths[i + 1]));
                    }
                }
                Ok((Box::new(model), p))
            }
        }
    }
}

/// Balanced initialisation of a deep linear net (see [`InitKind::Balanced`]); returns the
/// flat parameters. `std` is the entry std of the end-to-end matrix A.
pub fn balanced_init(widths: &[usize], std: f64, rng: &mut Rng) -> Result<Vec<f64>> {
    let l = widths.len() - 1;
    let (d, c) = (widths[0], widths[l]);
    let a_data = normal_vec(rng, c * d, std);
    let a = view(&a_data, c, d);
    let (u, s, v) = thin_svd(a)?;
    let r = s.len();
    if let Some(&k) = widths[1..l].iter().find(|&&k| k < r) {
        return Err(Error::config(
            "model.hidden",
            format!("balanced init needs every hidden width ≥ rank {r} = min(d, c); found {k}"),
        ));
    }
    let root: Vec<f64> = s.iter().map(|x| x.powf(1.0 / l as f64)).collect();
    let mut p = Vec::new();
    for i in 0..l {
        let (fo, fi) = (widths[i + 1], widths[i]);
        // W = Left · diag(root) · Rightᵀ with Left = U (last) or Q_{i} (= I[:, :r]); Right = V (first) or Q_{i-1}
        let w = Mat::from_fn(fo, fi, |row, col| {
            (0..r)
                .map(|k| {
                    let left = if i + 1 == l {
                        u[(row, k)]
                    } else if row == k {
                        1.0
                    } else {
                        0.0
                    };
                    let right = if i == 0 {
                        v[(col, k)]
                    } else if col == k {
                        1.0
                    } else {
                        0.0
                    };
                    left * root[k] * right
                })
                .sum()
        });
        for row in 0..fo {
            for col in 0..fi {
                p.push(w[(row, col)]);
            }
        }
    }
    Ok(p)
}
