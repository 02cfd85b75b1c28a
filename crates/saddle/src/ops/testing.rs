//! Test helpers, public so that layers and user code can check their own ops:
//! a finite-difference gradient check, PyTorch fixture loading, and
//! `assert_close`.
//!
//! **Tolerance.** Values are compared element by element with a mixed
//! absolute/relative bound, `|x − y| ≤ tol · (1 + |y|)`, i.e. the max norm of
//! the error scaled by `1 + |reference|`. PyTorch parity uses `tol = 1e-5`.
//!
//! **Fixtures** are safetensors files under `crates/saddle/tests/fixtures/`,
//! written by `tools/make_fixtures.py`. A case named `family/case` stores its
//! tensors as `family/case/NAME` (inputs, `out`, the upstream gradient `gout`
//! and the input gradients `grad_NAME`), and its settings in the file's
//! metadata under the key `family/case` as `key=value` words.
//!
//! Uses: `tensor`, `rng`.

use crate::tensor::{no_grad, Tensor};
use crate::Rng;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// Panics unless `|actual − expected| ≤ tol · (1 + |expected|)` everywhere;
/// the message names `what`, the first bad index and both values.
#[track_caller]
pub fn assert_close(what: &str, actual: &[f32], expected: &[f32], tol: f32) {
    assert_eq!(actual.len(), expected.len(), "{what}: {} values, expected {}", actual.len(), expected.len());
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let same_nan = a.is_nan() && e.is_nan();
        let same_inf = a.is_infinite() && a == e;
        if !(same_nan || same_inf || (a - e).abs() <= tol * (1.0 + e.abs())) {
            panic!("{what}: index {i}: got {a}, expected {e} (tolerance {tol}·(1+|expected|))");
        }
    }
}

/// Asserts `|actual − expected| ≤ tol · max |expected|` element by element:
/// for sums whose rounding grows with their largest terms rather than with
/// each result (Winograd's tiles), where [`assert_close`] would hold small
/// results to a tighter bound than the arithmetic gives.
#[track_caller]
pub fn assert_close_to_scale(what: &str, actual: &[f32], expected: &[f32], tol: f32) {
    assert_eq!(actual.len(), expected.len(), "{what}: {} values, expected {}", actual.len(), expected.len());
    let scale = expected.iter().fold(0.0f32, |m, e| m.max(e.abs()));
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let within = (a - e).abs() <= tol * scale;
        if !within {
            panic!("{what}: index {i}: got {a}, expected {e} (tolerance {tol}·{scale}, the largest |expected|)");
        }
    }
}

/// Checks `f`'s backward against central finite differences.
///
/// With a random upstream gradient `g` (never all ones, which hides swapped
/// axes) it compares `∂(Σ g ⊙ f(x))/∂xᵢ` from `backward` with
/// `(L(x + εeᵢ) − L(x − εeᵢ)) / 2ε`, `ε = 1e-3`, `L` summed in `f64`, for up to
/// 48 elements of each input, within `1e-2 · (1 + |analytic|)`.
///
/// ```
/// use saddle::{ops::testing::gradcheck, Rng, Tensor};
/// let mut rng = Rng::new(0);
/// let x = Tensor::uniform(&[3, 4], -1.0, 1.0, &mut rng);
/// gradcheck("tanh", &[x], |t| t[0].tanh(), &mut rng);
/// ```
#[track_caller]
pub fn gradcheck(name: &str, inputs: &[Tensor], f: impl Fn(&[Tensor]) -> Tensor, rng: &mut Rng) {
    let leaves: Vec<Tensor> = inputs.iter().map(|t| t.detach().requires_grad()).collect();
    let out = f(&leaves);
    let g = Tensor::normal(out.shape(), 0.0, 1.0, rng);
    out.backward_with(&g);
    let gv = g.to_vec();
    let loss =
        |xs: &[Tensor]| -> f64 { no_grad(|| f(xs)).data().iter().zip(&gv).map(|(o, g)| *o as f64 * *g as f64).sum() };
    let eps = 1e-3f32;
    for (k, leaf) in leaves.iter().enumerate() {
        let analytic = leaf.grad().map(|t| t.to_vec()).unwrap_or_else(|| vec![0.0; leaf.numel()]);
        let n = leaf.numel();
        let picks: Vec<usize> = if n <= 48 { (0..n).collect() } else { (0..48).map(|_| rng.below(n)).collect() };
        for i in picks {
            let probe: Vec<Tensor> = leaves.iter().map(|t| t.detach()).collect();
            let x0 = probe[k].data()[i];
            probe[k].data_mut()[i] = x0 + eps;
            let plus = loss(&probe);
            probe[k].data_mut()[i] = x0 - eps;
            let minus = loss(&probe);
            let numeric = ((plus - minus) / (2.0 * eps as f64)) as f32;
            let a = analytic[i];
            assert!(
                (numeric - a).abs() <= 1e-2 * (1.0 + a.abs()),
                "gradcheck {name}: input {k} {:?}, element {i}: backward gives {a}, finite differences {numeric}",
                leaf.shape()
            );
        }
    }
}

/// One fixture case: its name and its `key=value` settings.
#[derive(Clone, Debug)]
pub struct Case {
    /// `family/case`.
    pub name: String,
    attrs: HashMap<String, String>,
}

impl Case {
    /// A case with no settings, for tensors stored outside any case (`data/x`).
    pub fn named(name: &str) -> Case {
        Case { name: name.to_string(), attrs: HashMap::new() }
    }
    /// A setting as written by the generator. Panics if absent.
    pub fn attr(&self, key: &str) -> &str {
        self.attrs.get(key).unwrap_or_else(|| panic!("fixture {}: no setting {key}", self.name))
    }
    /// A setting, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.attrs.get(key).map(|s| s.as_str())
    }
    /// A numeric setting.
    pub fn attr_f32(&self, key: &str) -> f32 {
        self.attr(key).parse().unwrap_or_else(|_| panic!("fixture {}: {key} is not a number", self.name))
    }
    /// An integer setting.
    pub fn attr_usize(&self, key: &str) -> usize {
        self.attr(key).parse().unwrap_or_else(|_| panic!("fixture {}: {key} is not an integer", self.name))
    }
    /// A `true`/`false` setting.
    pub fn attr_bool(&self, key: &str) -> bool {
        self.attr(key) == "true"
    }
    /// A pair setting written `a,b` (or one number for both).
    pub fn attr_pair(&self, key: &str) -> (usize, usize) {
        let v: Vec<usize> = self.attr(key).split(',').map(|p| p.parse().expect("integer pair")).collect();
        if v.len() == 1 {
            (v[0], v[0])
        } else {
            (v[0], v[1])
        }
    }
}

/// The tensors and settings of one fixture file.
pub struct Fixtures {
    file: String,
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    cases: BTreeMap<String, Case>,
}

impl Fixtures {
    /// Loads `crates/saddle/tests/fixtures/{name}.safetensors`. Panics if it is
    /// missing: fixtures are committed, and `tools/make_fixtures.py` rewrites them.
    pub fn load(name: &str) -> Fixtures {
        let path: PathBuf =
            [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", &format!("{name}.safetensors")].iter().collect();
        let bytes =
            std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run tools/make_fixtures.py)", path.display()));
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (_, meta) =
            safetensors::SafeTensors::read_metadata(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut tensors = HashMap::new();
        for (key, view) in st.tensors() {
            assert_eq!(view.dtype(), safetensors::Dtype::F32, "{}: {key} is not f32", path.display());
            let data = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            tensors.insert(key, (view.shape().to_vec(), data));
        }
        let cases = meta
            .metadata()
            .iter()
            .flatten()
            .filter(|(k, _)| k.contains('/'))
            .map(|(k, v)| {
                let attrs = v
                    .split_whitespace()
                    .filter_map(|w| w.split_once('='))
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect();
                (k.clone(), Case { name: k.clone(), attrs })
            })
            .collect();
        Fixtures { file: name.to_string(), tensors, cases }
    }

    /// The cases of one family (`family/…`), in name order. Panics if there are none.
    pub fn cases(&self, family: &str) -> Vec<Case> {
        let prefix = format!("{family}/");
        let found: Vec<Case> = self.cases.values().filter(|c| c.name.starts_with(&prefix)).cloned().collect();
        assert!(!found.is_empty(), "fixtures {}: no cases under {family}/", self.file);
        found
    }

    /// The stored tensor `case/key`, as a constant.
    pub fn tensor(&self, case: &Case, key: &str) -> Tensor {
        let full = format!("{}/{key}", case.name);
        let (shape, data) =
            self.tensors.get(&full).unwrap_or_else(|| panic!("fixtures {}: no tensor {full}", self.file));
        Tensor::from_vec(data.clone(), shape)
    }

    /// Whether the case stores `case/key`.
    pub fn has(&self, case: &Case, key: &str) -> bool {
        self.tensors.contains_key(&format!("{}/{key}", case.name))
    }

    /// The stored tensor `case/key` as a leaf that requires a gradient.
    pub fn param(&self, case: &Case, key: &str) -> Tensor {
        self.tensor(case, key).requires_grad()
    }

    /// The stored integers `case/key` (kept as `f32` in the file).
    pub fn indices(&self, case: &Case, key: &str) -> Vec<i64> {
        self.tensor(case, key).to_vec().iter().map(|&v| v as i64).collect()
    }

    /// Checks `out` against `case/out`, back-propagates `case/gout`, and checks
    /// each named input's gradient against `case/grad_NAME`, all within `1e-5`
    /// ([`assert_close`]).
    #[track_caller]
    pub fn check_forward_backward(&self, case: &Case, out: &Tensor, inputs: &[(&str, &Tensor)]) {
        self.check_forward_backward_with(case, out, inputs, |what, a, e| assert_close(what, a, e, 1e-5));
    }

    /// [`check_forward_backward`](Self::check_forward_backward) with
    /// `compare(what, actual, expected)` for every tensor.
    #[track_caller]
    pub fn check_forward_backward_with(
        &self,
        case: &Case,
        out: &Tensor,
        inputs: &[(&str, &Tensor)],
        compare: impl Fn(&str, &[f32], &[f32]),
    ) {
        let expected = self.tensor(case, "out");
        assert_eq!(out.shape(), expected.shape(), "{}: output shape", case.name);
        compare(&format!("{} out", case.name), &out.to_vec(), &expected.to_vec());
        out.backward_with(&self.tensor(case, "gout"));
        for (name, t) in inputs {
            let want = self.tensor(case, &format!("grad_{name}"));
            let got = t.grad().unwrap_or_else(|| panic!("{}: {name} got no gradient", case.name));
            compare(&format!("{} grad_{name}", case.name), &got.to_vec(), &want.to_vec());
        }
    }
}
