//! Butcher tableaux with embedded error estimates (static data only; the engine that runs
//! them is [`super::RkStepper`]).

/// An explicit Runge–Kutta method with an embedded lower-order error estimate.
///
/// For one step of size `h` from `(t, y)`, with `s` stages:
///
/// ```text
/// k_i  = f(t + c_i h, y + h Σ_{j<i} a_ij k_j),        i = 0..s
/// y1   = y + h Σ_i b_i k_i                             (order `order`, local extrapolation)
/// err  = h Σ_i b_err_i k_i,   b_err = b − b̂            (b̂: embedded method of order `order − 1`)
/// ```
///
/// so `err = O(h^order)`; the controller exponent is `1/order` (Hairer–Nørsett–Wanner I,
/// §II.4: `1/(q+1)` with `q = min(p, p̂) = order − 1`).
///
/// **Dense output** on the step, `θ = (t − t0)/h ∈ [0, 1]`, is given by [`DenseOutput`].
///
/// Invariants (checked by [`super::RkStepper::new`]): `s = b.len() ≥ 2`; `c`, `b_err` and
/// the dense-output coefficients have length `s`; `a[i]` has length `i`; `c[0] = 0`; if `fsal`, then `c[s−1] = 1`
/// and `a[s−1] = b[..s−1]` with `b[s−1] = 0`, so the last stage is `f(t1, y1)`, reused as the
/// first stage of the next step ("first same as last").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tableau {
    /// Short lowercase name, as used in configs (`"dopri5"`, `"tsit5"`, `"bosh3"`,
    /// `"heun_euler"`); see [`Tableau::from_name`].
    pub name: &'static str,
    /// Order `p` of the propagated solution `y1` (the embedded method has order `p − 1`).
    pub order: u32,
    /// Nodes `c_i`.
    pub c: &'static [f64],
    /// Strictly lower-triangular coupling matrix, row by row: `a[i]` holds `a_i0..a_i(i−1)`.
    pub a: &'static [&'static [f64]],
    /// Weights `b_i` of the propagated solution.
    pub b: &'static [f64],
    /// Error weights `b_i − b̂_i`.
    pub b_err: &'static [f64],
    /// First-same-as-last: the last stage equals `f(t1, y1)`.
    pub fsal: bool,
    /// Continuous extension used by [`super::RkStepper::interpolate`].
    pub dense: DenseOutput,
}

/// Continuous extension ("dense output") of a Runge–Kutta step from `(t0, y0)` to
/// `(t1, y1)`, `h = t1 − t0`, at `t = t0 + θh`, `θ ∈ [0, 1]`, from the stages `k_j` of the
/// step, `f0 = k_0` and `f1 = f(t1, y1)` (Hairer–Nørsett–Wanner I, §II.6).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DenseOutput {
    /// Cubic Hermite interpolant of `(y0, f0)` and `(y1, f1)`; third order:
    ///
    /// ```text
    /// Δ = y1 − y0
    /// y(θ) = y0 + θ(Δ + (1−θ)(h f0 − Δ + θ(2Δ − h f0 − h f1)))
    /// ```
    Hermite,
    /// Cubic Hermite plus the quartic correction `θ²(1−θ)² · h Σ_j d_j k_j`, i.e. the
    /// `2Δ − h f0 − h f1` above becomes `2Δ − h f0 − h f1 + (1−θ) h Σ_j d_j k_j`. With
    /// Shampine's `d_j` this is DOPRI5's 4th-order continuous extension, in the nested form
    /// of Hairer's code `DOPRI5` (`CONTD5`). Needs an FSAL tableau (`f1 = k_{s−1}`).
    HermiteQuartic(&'static [f64]),
    /// `y(θ) = y0 + h Σ_j b_j(θ) k_j` with `b_j(θ) = Σ_m coef[j][m] θ^{m+1}` (the stages
    /// must include `f1`, i.e. an FSAL tableau). Used for Tsitouras' 4th-order interpolant.
    Polynomial(&'static [&'static [f64]]),
}

impl Tableau {
    /// Number of stages `s`.
    pub fn stages(&self) -> usize {
        self.b.len()
    }

    /// The built-in tableau called `name` (`"dopri5"`, `"tsit5"`, `"bosh3"`, `"heun_euler"`),
    /// case-insensitive.
    pub fn from_name(name: &str) -> Option<&'static Tableau> {
        Self::ALL
            .iter()
            .copied()
            .find(|t| t.name.eq_ignore_ascii_case(name))
    }

    /// All built-in tableaux, highest order first.
    pub const ALL: [&'static Tableau; 4] = [&DOPRI5, &TSIT5, &BOSH3, &HEUN_EULER];
}

/// Dormand–Prince 5(4), 7 stages, FSAL, with its 4th-order continuous extension.
///
/// Coefficients from Dormand & Prince (1980), Table 2; dense-output coefficients `d_j` from
/// Hairer–Nørsett–Wanner I, §II.6 (Shampine 1986), as in Hairer's Fortran code `DOPRI5`.
/// Six new function evaluations per step.
pub const DOPRI5: Tableau = Tableau {
    name: "dopri5",
    order: 5,
    c: &[0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0],
    a: &[
        &[],
        &[1.0 / 5.0],
        &[3.0 / 40.0, 9.0 / 40.0],
        &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
        &[
            19372.0 / 6561.0,
            -25360.0 / 2187.0,
            64448.0 / 6561.0,
            -212.0 / 729.0,
        ],
        &[
            9017.0 / 3168.0,
            -355.0 / 33.0,
            46732.0 / 5247.0,
            49.0 / 176.0,
            -5103.0 / 18656.0,
        ],
        &[
            35.0 / 384.0,
            0.0,
            500.0 / 1113.0,
            125.0 / 192.0,
            -2187.0 / 6784.0,
            11.0 / 84.0,
        ],
    ],
    b: &[
        35.0 / 384.0,
        0.0,
        500.0 / 1113.0,
        125.0 / 192.0,
        -2187.0 / 6784.0,
        11.0 / 84.0,
        0.0,
    ],
    // b − b̂ with b̂ = (5179/57600, 0, 7571/16695, 393/640, −92097/339200, 187/2100, 1/40).
    b_err: &[
        71.0 / 57600.0,
        0.0,
        -71.0 / 16695.0,
        71.0 / 1920.0,
        -17253.0 / 339200.0,
        22.0 / 525.0,
        -1.0 / 40.0,
    ],
    fsal: true,
    dense: DenseOutput::HermiteQuartic(&[
        -12715105075.0 / 11282082432.0,
        0.0,
        87487479700.0 / 32700410799.0,
        -10690763975.0 / 1880347072.0,
        701980252875.0 / 199316789632.0,
        -1453857185.0 / 822651844.0,
        69997945.0 / 29380423.0,
    ]),
};

/// Tsitouras 5(4), 7 stages, FSAL (Tsitouras 2011), usually a little more efficient than
/// DOPRI5 at the same tolerance.
///
/// Coefficients are the 90-digit values of diffrax's `tsit5.py`, rounded to f64 (error
/// weights computed in high precision before rounding). Dense output is Tsitouras' 4th-order
/// interpolant (diffrax's `_Tsit5Interpolation`, expanded to monomials in θ; these are the
/// `r_jm` of OrdinaryDiffEq.jl's `Tsit5`).
pub const TSIT5: Tableau = Tableau {
    name: "tsit5",
    order: 5,
    c: &[0.0, 0.161, 0.327, 0.9, 0.9800255409045097, 1.0, 1.0],
    a: &[
        &[],
        &[0.161],
        &[-0.008480655492356989, 0.335480655492357],
        &[2.8971530571054935, -6.359448489975075, 4.3622954328695815],
        &[
            5.325864828439257,
            -11.748883564062828,
            7.4955393428898365,
            -0.09249506636175525,
        ],
        &[
            5.86145544294642,
            -12.92096931784711,
            8.159367898576159,
            -0.071584973281401,
            -0.028269050394068383,
        ],
        &[
            0.09646076681806523,
            0.01,
            0.4798896504144996,
            1.379008574103742,
            -3.290069515436081,
            2.324710524099774,
        ],
    ],
    b: &[
        0.09646076681806523,
        0.01,
        0.4798896504144996,
        1.379008574103742,
        -3.290069515436081,
        2.324710524099774,
        0.0,
    ],
    b_err: &[
        0.0017800110522257714,
        0.0008164344596567469,
        -0.007880878010261995,
        0.1447110071732629,
        -0.5823571654525552,
        0.45808210592918697,
        -0.015151515151515152,
    ],
    fsal: true,
    dense: DenseOutput::Polynomial(&[
        &[
            1.0,
            -2.763706197274826,
            2.9132554618219126,
            -1.0530884977290216,
        ],
        &[0.0, 0.13169999999999998, -0.2234, 0.1017],
        &[
            0.0,
            3.9302962368947516,
            -5.941033872131505,
            2.490627285651253,
        ],
        &[
            0.0,
            -12.411077166933676,
            30.33818863028232,
            -16.548102889244902,
        ],
        &[0.0, 37.50931341651104, -88.1789048947664, 47.37952196281928],
        &[
            0.0,
            -27.896526289197286,
            65.09189467479366,
            -34.87065786149661,
        ],
        &[0.0, 1.5, -4.0, 2.5],
    ]),
};

/// Bogacki–Shampine 3(2), 4 stages, FSAL (Bogacki & Shampine 1989; MATLAB's `ode23`).
/// Three new function evaluations per step. Dense output: cubic Hermite.
pub const BOSH3: Tableau = Tableau {
    name: "bosh3",
    order: 3,
    c: &[0.0, 1.0 / 2.0, 3.0 / 4.0, 1.0],
    a: &[
        &[],
        &[1.0 / 2.0],
        &[0.0, 3.0 / 4.0],
        &[2.0 / 9.0, 1.0 / 3.0, 4.0 / 9.0],
    ],
    b: &[2.0 / 9.0, 1.0 / 3.0, 4.0 / 9.0, 0.0],
    // b − b̂ with b̂ = (7/24, 1/4, 1/3, 1/8).
    b_err: &[-5.0 / 72.0, 1.0 / 12.0, 1.0 / 9.0, -1.0 / 8.0],
    fsal: true,
    dense: DenseOutput::Hermite,
};

/// Heun's method (explicit trapezoidal rule, order 2) with forward Euler (order 1) as the
/// embedded method; 2 stages, not FSAL, so each accepted step costs one extra evaluation of
/// `f(t1, y1)`. Dense output: cubic Hermite. Mostly for tests and as a cheap baseline.
pub const HEUN_EULER: Tableau = Tableau {
    name: "heun_euler",
    order: 2,
    c: &[0.0, 1.0],
    a: &[&[], &[1.0]],
    b: &[1.0 / 2.0, 1.0 / 2.0],
    // b − b̂ with b̂ = (1, 0).
    b_err: &[-1.0 / 2.0, 1.0 / 2.0],
    fsal: false,
    dense: DenseOutput::Hermite,
};
