//! A trained network given as weight matrices: the researcher's own MLP, read from a file
//! (`featlab nfa --weights …`) or handed over as numpy arrays (`featlab.nfa.measure`).
//!
//! The network is the layered model of [`crate::model::layered`]:
//! `f(x) = h_L`, `h_l = m_l W_l x_l + b_l`, `x_{l+1} = σ(h_l)` (σ after every layer but the
//! last), W_l stored fan-out × fan-in as PyTorch's `nn.Linear.weight` is. [`TrainedNetwork`]
//! owns the matrices, checks that they chain, and measures the per-layer NFA metrics of
//! [`super::measure`] (Radhakrishnan et al. 2024; Beaglehole, Mitliagkas & Agarwala 2024)
//! against optional initial weights W_l(0) for the centred C-NFC. The CLI and the Python
//! bindings both go through [`TrainedNetwork::measure`], so they compute one thing.
//!
//! [`TrainedNetwork::from_tensors`] maps named tensors (a safetensors/npz state dict) to
//! layers: every `<prefix>.weight` (2-D) is a layer, `<prefix>.bias` (1-D) its bias, and
//! layers are ordered by their prefix with digit runs compared as numbers (`0` < `2` < `10`,
//! `fc1` < `fc2` < `fc10`, `layers.2` < `layers.10`). Any other tensor is an error: the
//! network must be a plain stack of linear layers.

use super::measure::{measure, Measurement, NfaOptions};
use crate::model::{Activation, LayerStack};
use crate::{Error, NdArray, Result};
use faer::{Mat, MatRef, Par};
use std::cmp::Ordering;

/// Parse an activation by its config name (`linear`, `relu`, `tanh`, `quadratic`, `gelu`);
/// the error names `key`.
pub fn parse_activation(name: &str, key: &str) -> Result<Activation> {
    Activation::ALL
        .into_iter()
        .find(|a| a.name() == name)
        .ok_or_else(|| {
            let known: Vec<&str> = Activation::ALL.iter().map(|a| a.name()).collect();
            Error::config(
                key,
                format!(
                    "unknown activation `{name}` (known: {}); the network must use one named activation between its linear layers",
                    known.join(", ")
                ),
            )
        })
}

/// An MLP's weights, biases, forward multipliers and activation, checked to chain.
#[derive(Debug, Clone)]
pub struct TrainedNetwork {
    /// A label per layer for messages and outputs (e.g. `fc1`, or `W1`).
    pub names: Vec<String>,
    /// W_1 … W_L, each fan-out × fan-in.
    pub weights: Vec<Mat<f64>>,
    /// b_1 … b_L (`None` where a layer has no bias).
    pub biases: Vec<Option<Vec<f64>>>,
    /// Forward multipliers m_1 … m_L (1 for a PyTorch `nn.Linear`).
    pub mults: Vec<f64>,
    /// σ between layers.
    pub activation: Activation,
}

impl TrainedNetwork {
    /// Check and own a layer stack. `names` label the layers in errors (default `W1`, `W2`, …);
    /// `biases` and `mults` default to none and 1. Errors ([`Error::Shape`]) name the layer
    /// whose shape does not fit.
    pub fn new(
        names: Option<Vec<String>>,
        weights: Vec<Mat<f64>>,
        biases: Option<Vec<Option<Vec<f64>>>>,
        mults: Option<Vec<f64>>,
        activation: Activation,
    ) -> Result<Self> {
        let depth = weights.len();
        if depth == 0 {
            return Err(Error::Shape("need at least one weight matrix".into()));
        }
        let names = names.unwrap_or_else(|| (1..=depth).map(|l| format!("W{l}")).collect());
        if names.len() != depth {
            return Err(Error::Shape(format!(
                "{} layer names for {depth} layers",
                names.len()
            )));
        }
        for (l, w) in weights.iter().enumerate() {
            if w.nrows() == 0 || w.ncols() == 0 {
                return Err(Error::Shape(format!(
                    "layer {} (`{}`) is {}×{}: empty",
                    l + 1,
                    names[l],
                    w.nrows(),
                    w.ncols()
                )));
            }
            if let Some((i, j)) = first_non_finite(w.as_ref()) {
                return Err(Error::Shape(format!(
                    "layer {} (`{}`) has a non-finite entry at ({i}, {j})",
                    l + 1,
                    names[l]
                )));
            }
        }
        for l in 1..depth {
            if weights[l].ncols() != weights[l - 1].nrows() {
                return Err(Error::Shape(format!(
                    "layer {} (`{}`) is {}×{} (fan-out × fan-in) but layer {} (`{}`) has {} outputs",
                    l + 1,
                    names[l],
                    weights[l].nrows(),
                    weights[l].ncols(),
                    l,
                    names[l - 1],
                    weights[l - 1].nrows()
                )));
            }
        }
        let biases = biases.unwrap_or_else(|| vec![None; depth]);
        if biases.len() != depth {
            return Err(Error::Shape(format!(
                "{} biases for {depth} layers",
                biases.len()
            )));
        }
        for (l, b) in biases.iter().enumerate() {
            if let Some(b) = b {
                if b.len() != weights[l].nrows() {
                    return Err(Error::Shape(format!(
                        "the bias of layer {} (`{}`) has {} entries, its weight has {} rows",
                        l + 1,
                        names[l],
                        b.len(),
                        weights[l].nrows()
                    )));
                }
                if b.iter().any(|v| !v.is_finite()) {
                    return Err(Error::Shape(format!(
                        "the bias of layer {} (`{}`) has a non-finite entry",
                        l + 1,
                        names[l]
                    )));
                }
            }
        }
        let mults = mults.unwrap_or_else(|| vec![1.0; depth]);
        if mults.len() != depth {
            return Err(Error::Shape(format!(
                "{} multipliers for {depth} layers",
                mults.len()
            )));
        }
        Ok(TrainedNetwork {
            names,
            weights,
            biases,
            mults,
            activation,
        })
    }

    /// Build from named tensors (a state dict) by the naming rule of the module docs.
    /// `source` names the file in errors.
    pub fn from_tensors(
        tensors: Vec<(String, NdArray)>,
        activation: Activation,
        source: &str,
    ) -> Result<Self> {
        let mut layers: Vec<(String, Option<NdArray>, Option<NdArray>)> = Vec::new();
        type Slots = Vec<(String, Option<NdArray>, Option<NdArray>)>;
        fn slot(layers: &mut Slots, prefix: &str) -> usize {
            match layers.iter().position(|(p, _, _)| p == prefix) {
                Some(i) => i,
                None => {
                    layers.push((prefix.to_string(), None, None));
                    layers.len() - 1
                }
            }
        }
        for (name, t) in tensors {
            if let Some(prefix) = name.strip_suffix(".weight") {
                if t.shape.len() != 2 {
                    return Err(Error::Shape(format!(
                        "`{name}` in {source} has shape {:?}: featlab nfa reads MLPs, whose layers are 2-D linear weights",
                        t.shape
                    )));
                }
                let i = slot(&mut layers, prefix);
                layers[i].1 = Some(t);
            } else if let Some(prefix) = name.strip_suffix(".bias") {
                if t.shape.len() != 1 {
                    return Err(Error::Shape(format!(
                        "`{name}` in {source} has shape {:?}; a bias is 1-D",
                        t.shape
                    )));
                }
                let i = slot(&mut layers, prefix);
                layers[i].2 = Some(t);
            } else {
                return Err(Error::Shape(format!(
                    "`{name}` in {source} is neither `<layer>.weight` nor `<layer>.bias`: featlab nfa reads plain MLPs (a stack of linear layers with one activation)"
                )));
            }
        }
        layers.sort_by(|a, b| natural_cmp(&a.0, &b.0));
        let mut names = Vec::new();
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        for (prefix, w, b) in layers {
            let Some(w) = w else {
                return Err(Error::Shape(format!(
                    "`{prefix}.bias` in {source} has no `{prefix}.weight`"
                )));
            };
            names.push(prefix);
            weights.push(w.to_mat());
            biases.push(b.map(|b| b.data));
        }
        if weights.is_empty() {
            return Err(Error::Shape(format!(
                "{source} holds no `<layer>.weight` tensor"
            )));
        }
        Self::new(Some(names), weights, Some(biases), None, activation)
    }

    /// Number of layers L.
    pub fn depth(&self) -> usize {
        self.weights.len()
    }

    /// The borrowed layer description the NFA kernels take.
    pub fn view(&self) -> LayerStack<'_> {
        LayerStack {
            weights: self.weights.iter().map(|w| w.as_ref()).collect(),
            biases: self.biases.iter().map(|b| b.as_deref()).collect(),
            mults: self.mults.clone(),
            activation: self.activation,
        }
    }

    /// Check that `x` (n × d) fits the first layer.
    pub fn check_inputs(&self, x: MatRef<'_, f64>) -> Result<()> {
        if x.ncols() != self.weights[0].ncols() {
            return Err(Error::Shape(format!(
                "the inputs have {} columns but layer 1 (`{}`) has fan-in {}",
                x.ncols(),
                self.names[0],
                self.weights[0].ncols()
            )));
        }
        if x.nrows() == 0 {
            return Err(Error::Shape("the inputs have no rows".into()));
        }
        if let Some((i, j)) = first_non_finite(x) {
            return Err(Error::Shape(format!(
                "the inputs have a non-finite entry at row {i}, column {j}"
            )));
        }
        Ok(())
    }

    /// Check that `init` has this network's layer shapes (errors name the layer).
    pub fn check_init(&self, init: &[Mat<f64>]) -> Result<()> {
        if init.len() != self.depth() {
            return Err(Error::Shape(format!(
                "{} initial weights for {} layers",
                init.len(),
                self.depth()
            )));
        }
        for (l, (w0, w)) in init.iter().zip(&self.weights).enumerate() {
            if (w0.nrows(), w0.ncols()) != (w.nrows(), w.ncols()) {
                return Err(Error::Shape(format!(
                    "the initial weight of layer {} (`{}`) is {}×{}, the trained one {}×{}",
                    l + 1,
                    self.names[l],
                    w0.nrows(),
                    w0.ncols(),
                    w.nrows(),
                    w.ncols()
                )));
            }
        }
        Ok(())
    }

    /// Per-layer NFA metrics ([`super::measure::measure`]) on the rows of `x`. With `init`
    /// (W_l(0) per layer) the C-NFC uses ΔW_l = W_l − W_l(0) and `rel_change` is
    /// ‖ΔW_l‖/‖W_l‖; without it ΔW = 0, so the C-NFC is undefined (NaN) and `rel_change` 0.
    pub fn measure(
        &self,
        init: Option<&[Mat<f64>]>,
        x: MatRef<'_, f64>,
        opts: &NfaOptions,
        par: Par,
    ) -> Result<Measurement> {
        self.check_inputs(x)?;
        let w0: Vec<Vec<f64>> = match init {
            Some(init) => {
                self.check_init(init)?;
                init.iter().map(|w| row_major(w.as_ref())).collect()
            }
            None => self.weights.iter().map(|w| row_major(w.as_ref())).collect(),
        };
        measure(&self.view(), &w0, x, opts, par, None)
    }
}

fn row_major(m: MatRef<'_, f64>) -> Vec<f64> {
    NdArray::from_mat(m).data
}

fn first_non_finite(m: MatRef<'_, f64>) -> Option<(usize, usize)> {
    (0..m.nrows())
        .flat_map(|i| (0..m.ncols()).map(move |j| (i, j)))
        .find(|&(i, j)| !m[(i, j)].is_finite())
}

/// Compare layer names with runs of digits compared as numbers (`fc2` < `fc10`).
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let na = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let nb = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (da, db) = (trim_zeros(&a[..na]), trim_zeros(&b[..nb]));
                let ord = da.len().cmp(&db.len()).then_with(|| da.cmp(db));
                if ord != Ordering::Equal {
                    return ord;
                }
                a = &a[na..];
                b = &b[nb..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let k = d.iter().take_while(|&&c| c == b'0').count();
    &d[k..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, shape: Vec<usize>) -> (String, NdArray) {
        let n = shape.iter().product();
        (
            name.to_string(),
            NdArray::new(shape, (0..n).map(|k| 0.1 * k as f64 - 0.3).collect()),
        )
    }

    #[test]
    fn layer_names_sort_numerically() {
        let mut v = vec!["layers.10", "layers.2", "layers.0", "fc10", "fc2", "fc1"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            ["fc1", "fc2", "fc10", "layers.0", "layers.2", "layers.10"]
        );
        let tensors = vec![
            t("10.weight", vec![2, 4]),
            t("0.bias", vec![3]),
            t("2.weight", vec![4, 3]),
            t("0.weight", vec![3, 5]),
        ];
        let net = TrainedNetwork::from_tensors(tensors, Activation::Relu, "m").unwrap();
        assert_eq!(net.names, ["0", "2", "10"]);
        assert_eq!(net.biases[0].as_ref().map(|b| b.len()), Some(3));
        assert!(net.biases[1].is_none());
        assert_eq!(net.weights[2].nrows(), 2);
    }

    #[test]
    fn bad_stacks_name_the_layer() {
        let msg = TrainedNetwork::from_tensors(
            vec![t("fc1.weight", vec![3, 5]), t("fc2.weight", vec![2, 4])],
            Activation::Relu,
            "m",
        )
        .unwrap_err()
        .to_string();
        assert!(
            msg.contains("layer 2 (`fc2`)") && msg.contains("3 outputs"),
            "{msg}"
        );
        let msg = TrainedNetwork::from_tensors(
            vec![t("fc1.weight", vec![3, 5]), t("fc1.bias", vec![4])],
            Activation::Relu,
            "m",
        )
        .unwrap_err()
        .to_string();
        assert!(msg.contains("bias of layer 1 (`fc1`)"), "{msg}");
        let msg = TrainedNetwork::from_tensors(
            vec![t("conv.weight", vec![3, 1, 2, 2])],
            Activation::Relu,
            "m",
        )
        .unwrap_err()
        .to_string();
        assert!(msg.contains("`conv.weight`"), "{msg}");
        let msg = TrainedNetwork::from_tensors(
            vec![t("bn.running_mean", vec![3])],
            Activation::Relu,
            "m",
        )
        .unwrap_err()
        .to_string();
        assert!(msg.contains("`bn.running_mean`"), "{msg}");
        let msg = parse_activation("swish", "--activation")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("--activation") && msg.contains("swish"),
            "{msg}"
        );
        assert_eq!(parse_activation("gelu", "k").unwrap(), Activation::Gelu);
    }
}
