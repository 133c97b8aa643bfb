//! Pointwise activations σ and their derivatives σ'.

use super::simd8::V8;
use serde::{Deserialize, Serialize};

/// A pointwise nonlinearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// σ(z) = z
    Linear,
    /// σ(z) = max(z, 0); σ'(0) := 0
    Relu,
    /// σ(z) = tanh z
    Tanh,
    /// σ(z) = z² (quadratic networks, AGF modular addition)
    Quadratic,
    /// σ(z) = z Φ(z) with Φ the standard normal CDF (exact GELU, Hendrycks & Gimpel 2016)
    Gelu,
    /// σ(z) = z³ (cubic networks: k = 3 group composition, Marchetti et al. 2026)
    Cubic,
}

const INV_SQRT_2: f64 = std::f64::consts::FRAC_1_SQRT_2;
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

impl Activation {
    /// σ(z).
    #[inline(always)]
    pub fn apply(self, z: f64) -> f64 {
        match self {
            Activation::Linear => z,
            Activation::Relu => z.max(0.0),
            Activation::Tanh => z.tanh(),
            Activation::Quadratic => z * z,
            Activation::Gelu => 0.5 * z * (1.0 + libm::erf(z * INV_SQRT_2)),
            Activation::Cubic => z * z * z,
        }
    }

    /// σ'(z).
    #[inline(always)]
    pub fn derivative(self, z: f64) -> f64 {
        match self {
            Activation::Linear => 1.0,
            Activation::Relu => {
                if z > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Tanh => {
                let t = z.tanh();
                1.0 - t * t
            }
            Activation::Quadratic => 2.0 * z,
            Activation::Gelu => {
                0.5 * (1.0 + libm::erf(z * INV_SQRT_2)) + z * INV_SQRT_2PI * (-0.5 * z * z).exp()
            }
            Activation::Cubic => 3.0 * z * z,
        }
    }

    /// σ''(z): 0 for linear and ReLU (ReLU: away from the kink), −2 tanh z (1 − tanh² z),
    /// 2 for quadratic, 6z for cubic, φ(z)(2 − z²) for GELU (σ = zΦ: σ' = Φ + zφ, σ'' = 2φ + zφ' with
    /// φ' = −zφ). Used by exact Hessians ([`crate::model::two_layer::TwoLayer::neuron_loss_hessian`]).
    pub fn second_derivative(self, z: f64) -> f64 {
        match self {
            Activation::Linear | Activation::Relu => 0.0,
            Activation::Tanh => {
                let t = z.tanh();
                -2.0 * t * (1.0 - t * t)
            }
            Activation::Quadratic => 2.0,
            Activation::Gelu => INV_SQRT_2PI * (-0.5 * z * z).exp() * (2.0 - z * z),
            Activation::Cubic => 6.0 * z,
        }
    }

    /// Degree of positive homogeneity of σ (σ(λz) = λ^p σ(z) for λ > 0), if any:
    /// 1 for linear and ReLU, 2 for quadratic, 3 for cubic, none for tanh/GELU.
    pub fn homogeneity(self) -> Option<u32> {
        match self {
            Activation::Linear | Activation::Relu => Some(1),
            Activation::Quadratic => Some(2),
            Activation::Cubic => Some(3),
            Activation::Tanh | Activation::Gelu => None,
        }
    }

    /// The config name (`linear`, `relu`, `tanh`, `quadratic`, `gelu`, `cubic`), as TOML spells it.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Quadratic => "quadratic",
            Activation::Gelu => "gelu",
            Activation::Cubic => "cubic",
        }
    }

    /// All activations, for tests and `--help` listings.
    pub const ALL: [Activation; 6] = [
        Activation::Linear,
        Activation::Relu,
        Activation::Tanh,
        Activation::Quadratic,
        Activation::Gelu,
        Activation::Cubic,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn names_are_the_config_spelling() {
        for act in Activation::ALL {
            let parsed: Activation = serde_json::from_value(serde_json::json!(act.name())).unwrap();
            assert_eq!(parsed, act);
        }
    }

    #[test]
    fn derivatives_match_finite_differences() {
        for act in Activation::ALL {
            for &z in &[-2.3, -0.7, 0.31, 1.9] {
                let h = 1e-6;
                let fd = (act.apply(z + h) - act.apply(z - h)) / (2.0 * h);
                let an = act.derivative(z);
                assert!((fd - an).abs() < 1e-8, "{act:?} at {z}: {fd} vs {an}");
                let fd2 = (act.derivative(z + h) - act.derivative(z - h)) / (2.0 * h);
                let an2 = act.second_derivative(z);
                assert!((fd2 - an2).abs() < 1e-8, "{act:?}'' at {z}: {fd2} vs {an2}");
            }
        }
    }
}

/// Monomorphised activation kernels: one zero-sized type per activation so that fused
/// loops compile to branch-free, vectorised code (the `match` in [`Activation::apply`] is
/// resolved once per call instead of once per element).
pub(crate) trait ActFn: Copy + Send + Sync {
    fn f(z: f64) -> f64;
    fn df(z: f64) -> f64;
    /// σ on 8 lanes (lane by lane through [`ActFn::f`] unless overridden with the same
    /// bits). Unsafe as the [`V8`] operations are.
    #[inline(always)]
    unsafe fn vf<V: V8>(z: V) -> V {
        V::from_array(z.to_array().map(Self::f))
    }
    /// t ⊙ σ'(z) on 8 lanes (lane by lane `t·σ'(z)` unless overridden).
    #[inline(always)]
    unsafe fn vdz<V: V8>(t: V, z: V) -> V {
        let (t, z) = (t.to_array(), z.to_array());
        V::from_array(std::array::from_fn(|l| t[l] * Self::df(z[l])))
    }
}

macro_rules! act_kernel {
    ($name:ident, $variant:ident $(, $vec:item)*) => {
        #[derive(Clone, Copy)]
        pub(crate) struct $name;
        impl ActFn for $name {
            #[inline(always)]
            fn f(z: f64) -> f64 {
                Activation::$variant.apply(z)
            }
            #[inline(always)]
            fn df(z: f64) -> f64 {
                Activation::$variant.derivative(z)
            }
            $($vec)*
        }
    };
}
// The vector forms below are exact: σ(z) = z, t·1 = t; max(z, 0) = z where z > 0 and +0
// elsewhere (NaN → 0, as f64::max), t·σ' = t or +0; z², t·(2z) with 2z = z + z exactly.
act_kernel!(
    LinearK,
    Linear,
    #[inline(always)]
    unsafe fn vf<V: V8>(z: V) -> V {
        z
    },
    #[inline(always)]
    unsafe fn vdz<V: V8>(t: V, _z: V) -> V {
        t
    }
);
act_kernel!(
    ReluK,
    Relu,
    #[inline(always)]
    unsafe fn vf<V: V8>(z: V) -> V {
        V::pos_select(z, z)
    },
    #[inline(always)]
    unsafe fn vdz<V: V8>(t: V, z: V) -> V {
        V::pos_select(z, t)
    }
);
act_kernel!(TanhK, Tanh);
act_kernel!(
    QuadraticK,
    Quadratic,
    #[inline(always)]
    unsafe fn vf<V: V8>(z: V) -> V {
        V::mul(z, z)
    },
    #[inline(always)]
    unsafe fn vdz<V: V8>(t: V, z: V) -> V {
        V::mul(t, V::add(z, z))
    }
);
act_kernel!(GeluK, Gelu);
act_kernel!(CubicK, Cubic);

/// Call `$body` with `$k` bound to the kernel type of activation `$act`.
macro_rules! with_act_kernel {
    ($act:expr, $k:ident => $body:expr) => {
        match $act {
            $crate::model::activation::Activation::Linear => {
                type $k = $crate::model::activation::LinearK;
                $body
            }
            $crate::model::activation::Activation::Relu => {
                type $k = $crate::model::activation::ReluK;
                $body
            }
            $crate::model::activation::Activation::Tanh => {
                type $k = $crate::model::activation::TanhK;
                $body
            }
            $crate::model::activation::Activation::Quadratic => {
                type $k = $crate::model::activation::QuadraticK;
                $body
            }
            $crate::model::activation::Activation::Gelu => {
                type $k = $crate::model::activation::GeluK;
                $body
            }
            $crate::model::activation::Activation::Cubic => {
                type $k = $crate::model::activation::CubicK;
                $body
            }
        }
    };
}
pub(crate) use with_act_kernel;
