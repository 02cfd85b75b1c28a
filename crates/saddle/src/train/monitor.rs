//! [`Monitor`]: the measurements a verdict rests on, taken while training,
//! and their file, `diagnostics.csv`.
//!
//! Uses: `train` (observer types), `kernels::elementwise` (sums), `io`, `tensor`, `error`.

use super::{EpochMetrics, Observer, StepMetrics};
use crate::kernels::elementwise::{sum, sum_pairs};
use crate::{Error, Result, Tensor};
use std::path::Path;

/// What the [`Monitor`] measured over one interval of `k` steps, ending at
/// `step`.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The last step of the interval (0-based).
    pub step: usize,
    /// Mean batch loss over the interval.
    pub loss: f32,
    /// Learning rate at `step`.
    pub lr: f32,
    /// Mean global gradient norm `‖g‖` over the interval (before clipping).
    pub grad_norm: f32,
    /// Largest global gradient norm in the interval: spikes show here.
    pub grad_norm_max: f32,
    /// Fraction of the interval's steps where clipping fired.
    pub clipped: f32,
    /// `‖Δθ‖ / ‖θ‖` of the update at `step`: about 1e-3 is healthy; far
    /// smaller means the learning rate barely moves the weights.
    pub update_ratio: f32,
    /// `cos(Δθ_step, Δθ_step−1)`: negative when successive updates point back
    /// and forth across a ravine. NaN when there was no previous update.
    pub update_cosine: f32,
    /// `‖g_layer‖` at `step`, one per layer of [`Monitor::layers`].
    pub layer_norms: Vec<f32>,
}

/// The layer a parameter belongs to, from its PyTorch name:
/// `features.0.weight` → `features.0`; `rnn.weight_hh_l1_reverse` → `rnn.l1_reverse`.
pub fn layer_of(name: &str) -> String {
    let (prefix, last) = name.rsplit_once('.').unwrap_or(("", name));
    let layer =
        last.find("_l").filter(|&i| last[i + 2..].starts_with(|c: char| c.is_ascii_digit())).map(|i| &last[i + 1..]);
    match (prefix.is_empty(), layer) {
        (true, None) => name.to_string(),
        (true, Some(l)) => l.to_string(),
        (false, None) => prefix.to_string(),
        (false, Some(l)) => format!("{prefix}.{l}"),
    }
}

/// An [`Observer`] that measures, every `interval` steps, what [`Record`]
/// holds. The cost is a copy of the weights at two steps of each interval
/// and a pass over the gradients at one: small enough to stay on.
///
/// ```
/// use saddle::train::Monitor;
/// use saddle::train::Observer;
/// use saddle::Tensor;
/// // Gradient descent on L(w) = ½‖w‖² with η = 0.1, watched every 2 steps.
/// let w = Tensor::from_vec(vec![3.0, 4.0], &[2]).requires_grad();
/// let params = vec![("w".to_string(), w.clone())];
/// let mut monitor = Monitor::new(2);
/// for step in 0..4 {
///     w.zero_grad();
///     let loss = w.mul(&w).sum_all().mul_scalar(0.5);
///     loss.backward();
///     monitor.before_update(step, &params).unwrap();
///     let g = w.grad().unwrap().to_vec();
///     w.data_mut().iter_mut().zip(&g).for_each(|(p, g)| *p -= 0.1 * g);
///     let m = saddle::train::StepMetrics {
///         step, epoch: 0, steps_per_epoch: 4, loss: loss.item(), lr: 0.1, grad_norm: 5.0,
///         clipped: false, batch_size: 1, correct: 0, running_loss: 0.0, running_accuracy: 0.0,
///     };
///     monitor.on_step(&m).unwrap();
/// }
/// let r = &monitor.records()[1];
/// assert_eq!(r.step, 3);
/// assert!((r.update_ratio - 0.1).abs() < 1e-6); // Δw = −0.1·w
/// assert!((r.update_cosine - 1.0).abs() < 1e-6); // always the same direction
/// ```
pub struct Monitor {
    interval: usize,
    layers: Vec<String>,
    /// Layer index of each parameter, in the order `before_update` sees them.
    param_layer: Vec<usize>,
    params: Vec<Tensor>,
    /// The weights before the update of the current step, when it is measured.
    before: Option<Vec<f32>>,
    /// The previous measured update and its step.
    previous: Option<(usize, Vec<f32>)>,
    layer_norms: Vec<f32>,
    sums: (f64, f64, f32, usize, usize),
    records: Vec<Record>,
    log: Option<std::path::PathBuf>,
}

impl Monitor {
    /// Measures every `interval` steps (at least 1).
    pub fn new(interval: usize) -> Self {
        Monitor {
            interval: interval.max(1),
            layers: Vec::new(),
            param_layer: Vec::new(),
            params: Vec::new(),
            before: None,
            previous: None,
            layer_norms: Vec::new(),
            sums: (0.0, 0.0, 0.0, 0, 0),
            records: Vec::new(),
            log: None,
        }
    }

    /// Also writes the records to `path` (as [`Monitor::write_csv`]) after
    /// every epoch, so that an interrupted run keeps what was measured.
    pub fn with_log(mut self, path: &Path) -> Self {
        self.log = Some(path.to_path_buf());
        self
    }

    /// Continues a run that measured `records` before it stopped: the
    /// measurements of its first `steps` steps are kept, the rest dropped.
    /// (An interval that spans the point where it resumes has no update cosine.)
    pub fn continuing(mut self, mut records: Vec<Record>, steps: usize) -> Self {
        records.retain(|r| r.step < steps);
        self.records = records;
        self
    }

    /// The layers, in order of their first parameter.
    pub fn layers(&self) -> &[String] {
        &self.layers
    }

    /// What was measured so far.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Whether the weights are copied at `step`: the last two steps of each
    /// interval, so that the update and its predecessor are both known.
    fn snapshots(&self, step: usize) -> bool {
        (step + 1) % self.interval == 0 || (step + 2) % self.interval == 0
    }

    fn weights(&self) -> Vec<f32> {
        let mut w = Vec::with_capacity(self.params.iter().map(Tensor::numel).sum());
        self.params.iter().for_each(|p| w.extend_from_slice(&p.data()));
        w
    }

    /// Writes `diagnostics.csv`: a header `step,loss,lr,grad_norm,grad_norm_max,
    /// clipped,update_ratio,update_cosine,` then one column per layer
    /// (`grad_norm:LAYER`), and a row per record. Written atomically.
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        write_records(path, &self.layers, &self.records)
    }
}

const COLUMNS: [&str; 8] =
    ["step", "loss", "lr", "grad_norm", "grad_norm_max", "clipped", "update_ratio", "update_cosine"];

/// Writes records as [`Monitor::write_csv`] does.
pub fn write_records(path: &Path, layers: &[String], records: &[Record]) -> Result<()> {
    let mut text = COLUMNS.join(",");
    for l in layers {
        text += &format!(",grad_norm:{l}");
    }
    text.push('\n');
    for r in records {
        text += &format!(
            "{},{},{},{},{},{},{},{}",
            r.step, r.loss, r.lr, r.grad_norm, r.grad_norm_max, r.clipped, r.update_ratio, r.update_cosine
        );
        for v in &r.layer_norms {
            text += &format!(",{v}");
        }
        text.push('\n');
    }
    crate::io::write_atomically(path, text.as_bytes())
}

/// Reads a `diagnostics.csv` written by [`Monitor::write_csv`]: the layer
/// names and the records. A malformed file is an error naming its line and
/// column.
pub fn read_records(path: &Path) -> Result<(Vec<String>, Vec<Record>)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    if header.len() < COLUMNS.len() || header[..COLUMNS.len()] != COLUMNS {
        return Err(Error::format(path, format!("line 1: expected the header {}", COLUMNS.join(","))));
    }
    let mut layers = Vec::new();
    for (i, h) in header[COLUMNS.len()..].iter().enumerate() {
        let Some(l) = h.strip_prefix("grad_norm:") else {
            return Err(Error::format(
                path,
                format!("line 1, column {}: expected grad_norm:LAYER, found '{h}'", i + 9),
            ));
        };
        layers.push(l.to_string());
    }
    let mut records = Vec::new();
    for (i, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != header.len() {
            return Err(Error::format(
                path,
                format!("line {}: {} fields, the header has {}", i + 2, fields.len(), header.len()),
            ));
        }
        let num = |c: usize| -> Result<f32> {
            fields[c].parse::<f32>().map_err(|_| {
                Error::format(
                    path,
                    format!("line {}, column {} ({}): '{}' is not a number", i + 2, c + 1, header[c], fields[c]),
                )
            })
        };
        let step = fields[0].parse::<usize>().map_err(|_| {
            Error::format(path, format!("line {}, column 1 (step): '{}' is not a step number", i + 2, fields[0]))
        })?;
        records.push(Record {
            step,
            loss: num(1)?,
            lr: num(2)?,
            grad_norm: num(3)?,
            grad_norm_max: num(4)?,
            clipped: num(5)?,
            update_ratio: num(6)?,
            update_cosine: num(7)?,
            layer_norms: (COLUMNS.len()..header.len()).map(num).collect::<Result<_>>()?,
        });
    }
    Ok((layers, records))
}

/// `Σ v²` in `f64`, in the vectorized order of `kernels::elementwise::sum`.
fn sum_sq(v: &[f32]) -> f64 {
    sum(v, |x| (x as f64) * (x as f64))
}

impl Observer for Monitor {
    fn before_update(&mut self, step: usize, params: &[(String, Tensor)]) -> Result<()> {
        if self.params.is_empty() {
            for (name, p) in params {
                let layer = layer_of(name);
                let i = self.layers.iter().position(|l| *l == layer).unwrap_or_else(|| {
                    self.layers.push(layer);
                    self.layers.len() - 1
                });
                self.param_layer.push(i);
                self.params.push(p.clone());
            }
        }
        if (step + 1) % self.interval == 0 {
            let mut sq = vec![0.0f64; self.layers.len()];
            for (p, &l) in self.params.iter().zip(&self.param_layer) {
                sq[l] += p.with_grad_mut(|g| sum_sq(g)).unwrap_or(0.0);
            }
            self.layer_norms = sq.iter().map(|s| s.sqrt() as f32).collect();
        }
        self.before = self.snapshots(step).then(|| self.weights());
        Ok(())
    }

    fn on_step(&mut self, m: &StepMetrics) -> Result<()> {
        let s = &mut self.sums;
        s.0 += m.loss as f64;
        s.1 += m.grad_norm as f64;
        s.2 = s.2.max(m.grad_norm);
        s.3 += usize::from(m.clipped);
        s.4 += 1;
        let (mut ratio, mut cosine) = (f32::NAN, f32::NAN);
        if let Some(mut update) = self.before.take() {
            // The weights before the update become the update in place: Δθ = θ − θ_before.
            let before_sq = sum_sq(&update);
            let mut rest = &mut update[..];
            for p in &self.params {
                let (part, next) = rest.split_at_mut(p.numel());
                part.iter_mut().zip(p.data().iter()).for_each(|(d, w)| *d = w - *d);
                rest = next;
            }
            let u = sum_sq(&update).sqrt();
            ratio = (u / before_sq.sqrt().max(f64::MIN_POSITIVE)) as f32;
            if let Some((prev_step, prev)) = &self.previous {
                if *prev_step + 1 == m.step {
                    let d = sum_pairs(&update, prev, |a, b| a as f64 * b as f64);
                    cosine = (d / (u * sum_sq(prev).sqrt()).max(f64::MIN_POSITIVE)) as f32;
                }
            }
            self.previous = Some((m.step, update));
        }
        if (m.step + 1) % self.interval == 0 {
            let (loss, norm, max, clipped, n) = std::mem::take(&mut self.sums);
            self.records.push(Record {
                step: m.step,
                loss: (loss / n as f64) as f32,
                lr: m.lr,
                grad_norm: (norm / n as f64) as f32,
                grad_norm_max: max,
                clipped: clipped as f32 / n as f32,
                update_ratio: ratio,
                update_cosine: cosine,
                layer_norms: std::mem::take(&mut self.layer_norms),
            });
        }
        Ok(())
    }

    fn on_epoch(&mut self, _m: &EpochMetrics) -> Result<()> {
        match &self.log {
            Some(path) => self.write_csv(path),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_names() {
        assert_eq!(layer_of("features.0.weight"), "features.0");
        assert_eq!(layer_of("0.bias"), "0");
        assert_eq!(layer_of("rnn.weight_hh_l1_reverse"), "rnn.l1_reverse");
        assert_eq!(layer_of("weight_ih_l0"), "l0");
        assert_eq!(layer_of("w"), "w");
        assert_eq!(layer_of("fc.weight_like"), "fc");
    }

    #[test]
    fn csv_round_trip_and_errors() {
        let dir = std::env::temp_dir().join(format!("saddle-monitor-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("diagnostics.csv");
        let layers = vec!["0".to_string(), "2".to_string()];
        let r = Record {
            step: 9,
            loss: 0.5,
            lr: 0.1,
            grad_norm: 1.5,
            grad_norm_max: 3.0,
            clipped: 0.2,
            update_ratio: 1e-3,
            update_cosine: f32::NAN,
            layer_norms: vec![1.0, 0.25],
        };
        write_records(&path, &layers, std::slice::from_ref(&r)).unwrap();
        let (l, rs) = read_records(&path).unwrap();
        assert_eq!(l, layers);
        assert!(rs[0].update_cosine.is_nan());
        assert_eq!(Record { update_cosine: 0.0, ..rs[0].clone() }, Record { update_cosine: 0.0, ..r });
        let text = std::fs::read_to_string(&path).unwrap().replace("0.2,", "x,");
        std::fs::write(&path, text).unwrap();
        let e = read_records(&path).unwrap_err().to_string();
        assert!(e.contains("line 2, column 6 (clipped): 'x' is not a number"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
