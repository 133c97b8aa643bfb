//! Modular addition with a template (AGF §3.4, Kunin et al. 2025; the "template" form of
//! modular addition).
//!
//! A template x ∈ R^p (mean-centred) and its cyclic shifts a·x (`(a·x)[n] = x[(n − a) mod p]`,
//! numpy's `np.roll(x, a)`). For every pair (a, b) ∈ Z_p² (row a·p + b) the input is
//! (a·x, b·x) ∈ R^{2p} and the target is ((a + b) mod p)·x ∈ R^p. With x = e_0 − 1/p this is
//! ordinary one-hot modular addition (centred).
//!
//! Fourier convention: unnormalised DFT x̂[ξ] = Σ_n x[n] e^{−2πi ξ n/p} (numpy's `fft`), so
//! ‖x‖² = (1/p) Σ_ξ |x̂[ξ]|². Frequencies are grouped in conjugate pairs k ∈ {1, …, ⌊p/2⌋}
//! (ξ = ±k; for even p, k = p/2 is its own conjugate).

use super::Dataset;
use crate::rng::{normal_vec, Rng};
use crate::{Error, Result};
use faer::Mat;
use serde::{Deserialize, Serialize};

/// How the template is built.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Template {
    /// x = e_0, mean-centred: every frequency has |x̂| = 1 (all tied).
    OneHot,
    /// Given real Fourier magnitudes: x̂[±k] = magnitudes[i] for k = frequencies[i], i.e.
    /// x[n] = (2/p) Σ_i magnitudes[i] cos(2π k_i n / p) (halved for k = p/2), the real part
    /// of numpy's `ifft` of that spectrum (the AGF figure uses k = 1, 3, 5 with 10, 5, 2.5).
    Fourier {
        frequencies: Vec<usize>,
        magnitudes: Vec<f64>,
    },
    /// x ~ N(0, I_p) scaled by `scale` (seeded), mean-centred: a random spectrum.
    Gaussian {
        #[serde(default = "one")]
        scale: f64,
    },
}

fn one() -> f64 {
    1.0
}

impl Template {
    /// The mean-centred template vector x ∈ R^p.
    pub fn build(&self, p: usize, rng: &mut Rng) -> Result<Vec<f64>> {
        if p < 2 {
            return Err(Error::config(
                "data.p",
                format!("the modulus p must be ≥ 2, got {p}"),
            ));
        }
        let mut x = match self {
            Template::OneHot => {
                let mut x = vec![0.0; p];
                x[0] = 1.0;
                x
            }
            Template::Fourier {
                frequencies,
                magnitudes,
            } => {
                if frequencies.len() != magnitudes.len() || frequencies.is_empty() {
                    return Err(Error::config(
                        "data.template.magnitudes",
                        format!(
                            "needs one magnitude per frequency ({} frequencies, {} magnitudes)",
                            frequencies.len(),
                            magnitudes.len()
                        ),
                    ));
                }
                let mut seen = vec![false; p / 2 + 1];
                for &k in frequencies {
                    if k == 0 || k > p / 2 {
                        return Err(Error::config(
                            "data.template.frequencies",
                            format!("frequency {k} is outside 1..=⌊p/2⌋ = 1..={}", p / 2),
                        ));
                    }
                    if std::mem::replace(&mut seen[k], true) {
                        return Err(Error::config(
                            "data.template.frequencies",
                            format!("frequency {k} is listed twice"),
                        ));
                    }
                }
                if let Some(m) = magnitudes.iter().find(|m| !m.is_finite()) {
                    return Err(Error::config(
                        "data.template.magnitudes",
                        format!("must be finite, got {m}"),
                    ));
                }
                let pf = p as f64;
                (0..p)
                    .map(|n| {
                        frequencies
                            .iter()
                            .zip(magnitudes)
                            .map(|(&k, &a)| {
                                let w = if 2 * k == p { 1.0 } else { 2.0 };
                                w * a / pf
                                    * (2.0 * std::f64::consts::PI * (k * n) as f64 / pf).cos()
                            })
                            .sum()
                    })
                    .collect()
            }
            Template::Gaussian { scale } => {
                if !(scale.is_finite() && *scale > 0.0) {
                    return Err(Error::config(
                        "data.template.scale",
                        format!("must be finite and > 0, got {scale}"),
                    ));
                }
                normal_vec(rng, p, *scale)
            }
        };
        let mean = x.iter().sum::<f64>() / p as f64;
        x.iter_mut().for_each(|v| *v -= mean);
        Ok(x)
    }
}

/// Cyclic shift a·x: `(a·x)[n] = x[(n − a) mod p]`.
pub fn shift(x: &[f64], a: usize) -> Vec<f64> {
    let p = x.len();
    (0..p).map(|n| x[(n + p - a % p) % p]).collect()
}

/// All p² pairs: row a·p + b has input (a·x, b·x) (2p columns) and target ((a+b) mod p)·x.
pub fn modular_addition(template: &[f64]) -> Result<Dataset> {
    let p = template.len();
    let shifts: Vec<Vec<f64>> = (0..p).map(|a| shift(template, a)).collect();
    let x = Mat::from_fn(p * p, 2 * p, |r, j| {
        let (a, b) = (r / p, r % p);
        if j < p {
            shifts[a][j]
        } else {
            shifts[b][j - p]
        }
    });
    let y = Mat::from_fn(p * p, p, |r, j| shifts[(r / p + r % p) % p][j]);
    Dataset::new(x, y)
}

/// Unnormalised DFT (re, im) of a real vector: x̂[ξ] = Σ_n x[n] e^{−2πiξn/p}.
pub fn dft(x: &[f64]) -> Vec<(f64, f64)> {
    let p = x.len();
    let pf = p as f64;
    (0..p)
        .map(|xi| {
            x.iter().enumerate().fold((0.0, 0.0), |(re, im), (n, &v)| {
                let ang = -2.0 * std::f64::consts::PI * ((xi * n) % p) as f64 / pf;
                (re + v * ang.cos(), im + v * ang.sin())
            })
        })
        .collect()
}

/// Energy of a real vector per conjugate frequency pair k = 0..=⌊p/2⌋:
/// E_k = (1/2p) Σ_{ξ ≡ ±k} |x̂[ξ]|², so that ½‖x‖² = Σ_k E_k (Parseval).
pub fn pair_energies(x: &[f64]) -> Vec<f64> {
    let p = x.len();
    let f = dft(x);
    let mut e = vec![0.0; p / 2 + 1];
    for (xi, (re, im)) in f.iter().enumerate() {
        let k = xi.min(p - xi);
        e[k] += (re * re + im * im) / (2.0 * p as f64);
    }
    e
}

/// |x̂[k]| for k = 0..=⌊p/2⌋.
pub fn magnitudes(x: &[f64]) -> Vec<f64> {
    dft(x)
        .iter()
        .take(x.len() / 2 + 1)
        .map(|(re, im)| re.hypot(*im))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    #[test]
    fn fourier_template_has_the_requested_spectrum() {
        for p in [7usize, 20, 23] {
            let t = Template::Fourier {
                frequencies: vec![1, 3],
                magnitudes: vec![10.0, 5.0],
            };
            let x = t.build(p, &mut stream(0, "t")).unwrap();
            let m = magnitudes(&x);
            for (k, mk) in m.iter().enumerate() {
                let want = match k {
                    1 => 10.0,
                    3 => 5.0,
                    _ => 0.0,
                };
                assert!((mk - want).abs() < 1e-10, "p={p} k={k}: {mk} vs {want}");
            }
            let e = pair_energies(&x);
            let half_norm = 0.5 * x.iter().map(|v| v * v).sum::<f64>();
            assert!((e.iter().sum::<f64>() - half_norm).abs() < 1e-12);
            assert!((e[1] - 100.0 / p as f64).abs() < 1e-10);
        }
    }

    #[test]
    fn dataset_is_modular_addition_of_shifts() {
        let x = Template::Gaussian { scale: 1.0 }
            .build(5, &mut stream(1, "t"))
            .unwrap();
        assert!(x.iter().sum::<f64>().abs() < 1e-12);
        let d = modular_addition(&x).unwrap();
        assert_eq!((d.n(), d.d(), d.c()), (25, 10, 5));
        // row (a=2, b=4): target is the shift by 1
        let r = 2 * 5 + 4;
        for j in 0..5 {
            assert_eq!(d.y[(r, j)], x[(j + 5 - 1) % 5]);
            assert_eq!(d.x[(r, j)], x[(j + 5 - 2) % 5]);
            assert_eq!(d.x[(r, 5 + j)], x[(j + 5 - 4) % 5]);
        }
        let oh = Template::OneHot.build(4, &mut stream(1, "t")).unwrap();
        assert_eq!(oh, vec![0.75, -0.25, -0.25, -0.25]);
    }

    #[test]
    fn bad_templates_are_config_errors() {
        let bad = Template::Fourier {
            frequencies: vec![1, 9],
            magnitudes: vec![1.0, 2.0],
        };
        assert!(matches!(
            bad.build(11, &mut stream(0, "t")),
            Err(Error::Config { .. })
        ));
        let bad = Template::Fourier {
            frequencies: vec![1],
            magnitudes: vec![1.0, 2.0],
        };
        assert!(matches!(
            bad.build(11, &mut stream(0, "t")),
            Err(Error::Config { .. })
        ));
        assert!(matches!(
            Template::OneHot.build(1, &mut stream(0, "t")),
            Err(Error::Config { .. })
        ));
    }
}
