//! [`OptimizerSpec`]: an update rule with all its hyperparameters, as one
//! value that a run's `config.json` holds and reads back exactly, and
//! [`Family`], the seven optimizers by their command-line names.
//!
//! The text form is PyTorch's own `repr` of the optimizer's defaults:
//! `Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=false)`.
//! Numbers are written in their shortest form that reads back to the same
//! `f64`, so text → value → text is the identity.
//!
//! Uses: `optim` configs, `error`.

use super::{AdagradConfig, AdamConfig, ParamState, RmsPropConfig, SgdConfig, WeightDecay};
use crate::{Error, Result, Tensor};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// An update rule and its hyperparameters.
///
/// ```
/// use saddle::optim::{AdamConfig, OptimizerSpec};
/// let adamw: OptimizerSpec = AdamConfig::adamw().into();
/// let text = adamw.to_string();
/// assert_eq!(text, "AdamW(lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, amsgrad=false)");
/// assert_eq!(text.parse::<OptimizerSpec>().unwrap(), adamw);
/// assert_eq!(adamw.family().name(), "adamw");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum OptimizerSpec {
    /// `torch.optim.SGD`.
    Sgd(SgdConfig),
    /// `torch.optim.Adagrad`.
    Adagrad(AdagradConfig),
    /// `torch.optim.RMSprop`.
    RmsProp(RmsPropConfig),
    /// `torch.optim.Adam` and `torch.optim.AdamW`.
    Adam(AdamConfig),
}

impl From<SgdConfig> for OptimizerSpec {
    fn from(c: SgdConfig) -> Self {
        OptimizerSpec::Sgd(c)
    }
}
impl From<AdagradConfig> for OptimizerSpec {
    fn from(c: AdagradConfig) -> Self {
        OptimizerSpec::Adagrad(c)
    }
}
impl From<RmsPropConfig> for OptimizerSpec {
    fn from(c: RmsPropConfig) -> Self {
        OptimizerSpec::RmsProp(c)
    }
}
impl From<AdamConfig> for OptimizerSpec {
    fn from(c: AdamConfig) -> Self {
        OptimizerSpec::Adam(c)
    }
}

impl OptimizerSpec {
    /// The base learning rate η.
    pub fn lr(&self) -> f64 {
        match self {
            OptimizerSpec::Sgd(c) => c.lr,
            OptimizerSpec::Adagrad(c) => c.lr,
            OptimizerSpec::RmsProp(c) => c.lr,
            OptimizerSpec::Adam(c) => c.lr,
        }
    }

    /// The same rule with learning rate `lr`.
    pub fn with_lr(mut self, lr: f64) -> Self {
        match &mut self {
            OptimizerSpec::Sgd(c) => c.lr = lr,
            OptimizerSpec::Adagrad(c) => c.lr = lr,
            OptimizerSpec::RmsProp(c) => c.lr = lr,
            OptimizerSpec::Adam(c) => c.lr = lr,
        }
        self
    }

    /// The weight decay λ.
    pub fn weight_decay(&self) -> f64 {
        match self {
            OptimizerSpec::Sgd(c) => c.weight_decay,
            OptimizerSpec::Adagrad(c) => c.weight_decay,
            OptimizerSpec::RmsProp(c) => c.weight_decay,
            OptimizerSpec::Adam(c) => c.weight_decay.lambda(),
        }
    }

    /// The same rule with weight decay λ (of the same kind, L2 or decoupled).
    pub fn with_weight_decay(mut self, lambda: f64) -> Self {
        match &mut self {
            OptimizerSpec::Sgd(c) => c.weight_decay = lambda,
            OptimizerSpec::Adagrad(c) => c.weight_decay = lambda,
            OptimizerSpec::RmsProp(c) => c.weight_decay = lambda,
            OptimizerSpec::Adam(c) => c.weight_decay = c.weight_decay.with_lambda(lambda),
        }
        self
    }

    /// Which of the seven command-line optimizers this is.
    pub fn family(&self) -> Family {
        match self {
            OptimizerSpec::Sgd(c) if c.nesterov => Family::Nesterov,
            OptimizerSpec::Sgd(c) if c.momentum > 0.0 => Family::Momentum,
            OptimizerSpec::Sgd(_) => Family::Sgd,
            OptimizerSpec::Adagrad(_) => Family::Adagrad,
            OptimizerSpec::RmsProp(_) => Family::RmsProp,
            OptimizerSpec::Adam(c) if matches!(c.weight_decay, WeightDecay::Decoupled(_)) => Family::AdamW,
            OptimizerSpec::Adam(_) => Family::Adam,
        }
    }

    /// Checks every hyperparameter; the error names the bad one and its value.
    pub fn validate(&self) -> Result<()> {
        match self {
            OptimizerSpec::Sgd(c) => c.validate(),
            OptimizerSpec::Adagrad(c) => c.validate(),
            OptimizerSpec::RmsProp(c) => c.validate(),
            OptimizerSpec::Adam(c) => c.validate(),
        }
    }

    /// The rule for one parameter group: rate `lr`, and its own weight decay if it has one.
    pub(super) fn for_group(&self, lr: f64, weight_decay: Option<f64>) -> Self {
        let rule = self.with_lr(lr);
        weight_decay.map_or(rule, |wd| rule.with_weight_decay(wd))
    }

    /// One update of `params` (those with a gradient).
    pub(super) fn update(&self, params: &[(String, Tensor)], state: &mut BTreeMap<String, ParamState>) {
        match self {
            OptimizerSpec::Sgd(c) => c.update(params, state),
            OptimizerSpec::Adagrad(c) => c.update(params, state),
            OptimizerSpec::RmsProp(c) => c.update(params, state),
            OptimizerSpec::Adam(c) => c.update(params, state),
        }
    }
}

impl fmt::Display for OptimizerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptimizerSpec::Sgd(c) => write!(
                f,
                "SGD(lr={}, momentum={}, dampening={}, weight_decay={}, nesterov={})",
                c.lr, c.momentum, c.dampening, c.weight_decay, c.nesterov
            ),
            OptimizerSpec::Adagrad(c) => write!(
                f,
                "Adagrad(lr={}, lr_decay={}, weight_decay={}, initial_accumulator_value={}, eps={:e})",
                c.lr, c.lr_decay, c.weight_decay, c.initial_accumulator_value, c.eps
            ),
            OptimizerSpec::RmsProp(c) => write!(
                f,
                "RMSprop(lr={}, alpha={}, eps={:e}, weight_decay={}, momentum={}, centered={})",
                c.lr, c.alpha, c.eps, c.weight_decay, c.momentum, c.centered
            ),
            OptimizerSpec::Adam(c) => {
                let name = if matches!(c.weight_decay, WeightDecay::Decoupled(_)) { "AdamW" } else { "Adam" };
                write!(
                    f,
                    "{name}(lr={}, betas=({}, {}), eps={:e}, weight_decay={}, amsgrad={})",
                    c.lr,
                    c.betas.0,
                    c.betas.1,
                    c.eps,
                    c.weight_decay.lambda(),
                    c.amsgrad
                )
            }
        }
    }
}

/// `key=value` arguments of `Name(…)`, split at the commas outside parentheses.
fn arguments(text: &str) -> Result<(&str, BTreeMap<&str, &str>)> {
    let bad = |why: String| Error::config("optimizer", format!("'{text}': {why}"));
    let (name, rest) = text.trim().split_once('(').ok_or_else(|| bad("expected NAME(key=value, …)".into()))?;
    let inner = rest.strip_suffix(')').ok_or_else(|| bad("no closing parenthesis".into()))?;
    let (mut args, mut depth, mut start) = (BTreeMap::new(), 0i32, 0);
    for (i, ch) in inner.char_indices().chain([(inner.len(), ',')]) {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                let arg = inner[start..i].trim();
                start = i + 1;
                if arg.is_empty() {
                    continue;
                }
                let (k, v) = arg.split_once('=').ok_or_else(|| bad(format!("'{arg}' is not key=value")))?;
                if args.insert(k.trim(), v.trim()).is_some() {
                    return Err(bad(format!("'{}' is given twice", k.trim())));
                }
            }
            _ => {}
        }
    }
    Ok((name.trim(), args))
}

/// Takes the arguments of one rule out of `args`, checking their types.
struct Args<'a> {
    text: &'a str,
    args: BTreeMap<&'a str, &'a str>,
}

impl Args<'_> {
    fn bad(&self, why: String) -> Error {
        Error::config("optimizer", format!("'{}': {why}", self.text))
    }
    fn number(&mut self, key: &str, default: f64) -> Result<f64> {
        match self.args.remove(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| self.bad(format!("{key} must be a number, got '{v}'"))),
        }
    }
    fn flag(&mut self, key: &str, default: bool) -> Result<bool> {
        match self.args.remove(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| self.bad(format!("{key} must be true or false, got '{v}'"))),
        }
    }
    fn pair(&mut self, key: &str, default: (f64, f64)) -> Result<(f64, f64)> {
        let Some(v) = self.args.remove(key) else { return Ok(default) };
        let parsed = v
            .strip_prefix('(')
            .and_then(|v| v.strip_suffix(')'))
            .and_then(|v| v.split_once(','))
            .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
        parsed.ok_or_else(|| self.bad(format!("{key} must be a pair (a, b), got '{v}'")))
    }
    fn done(self) -> Result<()> {
        match self.args.keys().next() {
            None => Ok(()),
            Some(k) => Err(self.bad(format!("unknown hyperparameter '{k}'"))),
        }
    }
}

impl FromStr for OptimizerSpec {
    type Err = Error;
    /// Reads the text form; hyperparameters left out take PyTorch's defaults.
    fn from_str(text: &str) -> Result<Self> {
        let (name, args) = arguments(text)?;
        let mut a = Args { text, args };
        let spec = match name {
            "SGD" => {
                let d = SgdConfig::default();
                OptimizerSpec::Sgd(SgdConfig {
                    lr: a.number("lr", d.lr)?,
                    momentum: a.number("momentum", d.momentum)?,
                    dampening: a.number("dampening", d.dampening)?,
                    weight_decay: a.number("weight_decay", d.weight_decay)?,
                    nesterov: a.flag("nesterov", d.nesterov)?,
                })
            }
            "Adagrad" => {
                let d = AdagradConfig::default();
                OptimizerSpec::Adagrad(AdagradConfig {
                    lr: a.number("lr", d.lr)?,
                    lr_decay: a.number("lr_decay", d.lr_decay)?,
                    weight_decay: a.number("weight_decay", d.weight_decay)?,
                    initial_accumulator_value: a.number("initial_accumulator_value", d.initial_accumulator_value)?,
                    eps: a.number("eps", d.eps)?,
                })
            }
            "RMSprop" => {
                let d = RmsPropConfig::default();
                OptimizerSpec::RmsProp(RmsPropConfig {
                    lr: a.number("lr", d.lr)?,
                    alpha: a.number("alpha", d.alpha)?,
                    eps: a.number("eps", d.eps)?,
                    weight_decay: a.number("weight_decay", d.weight_decay)?,
                    momentum: a.number("momentum", d.momentum)?,
                    centered: a.flag("centered", d.centered)?,
                })
            }
            "Adam" | "AdamW" => {
                let d = if name == "AdamW" { AdamConfig::adamw() } else { AdamConfig::default() };
                OptimizerSpec::Adam(AdamConfig {
                    lr: a.number("lr", d.lr)?,
                    betas: a.pair("betas", d.betas)?,
                    eps: a.number("eps", d.eps)?,
                    weight_decay: d.weight_decay.with_lambda(a.number("weight_decay", d.weight_decay.lambda())?),
                    amsgrad: a.flag("amsgrad", d.amsgrad)?,
                })
            }
            other => {
                return Err(a.bad(format!("unknown optimizer '{other}'; expected SGD, Adagrad, RMSprop, Adam or AdamW")))
            }
        };
        a.done()?;
        spec.validate()?;
        Ok(spec)
    }
}

impl From<OptimizerSpec> for String {
    fn from(s: OptimizerSpec) -> String {
        s.to_string()
    }
}

impl TryFrom<String> for OptimizerSpec {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

/// The seven optimizers of the lecture, by their command-line names, in the
/// order it introduces them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Plain stochastic gradient descent.
    Sgd,
    /// SGD with heavy-ball momentum.
    Momentum,
    /// SGD with Nesterov momentum.
    Nesterov,
    /// Adagrad: steps shrink with the sum of all past squared gradients.
    Adagrad,
    /// RMSProp: steps divided by the RMS of recent gradients.
    RmsProp,
    /// Adam (Kingma and Ba): momentum and RMSProp, bias-corrected.
    Adam,
    /// Adam with decoupled weight decay (Loshchilov and Hutter).
    AdamW,
}

impl Family {
    /// All seven.
    pub const ALL: [Family; 7] = [
        Family::Sgd,
        Family::Momentum,
        Family::Nesterov,
        Family::Adagrad,
        Family::RmsProp,
        Family::Adam,
        Family::AdamW,
    ];

    /// The command-line name: `sgd`, `momentum`, `nesterov`, `adagrad`, `rmsprop`, `adam`, `adamw`.
    pub fn name(self) -> &'static str {
        match self {
            Family::Sgd => "sgd",
            Family::Momentum => "momentum",
            Family::Nesterov => "nesterov",
            Family::Adagrad => "adagrad",
            Family::RmsProp => "rmsprop",
            Family::Adam => "adam",
            Family::AdamW => "adamw",
        }
    }

    /// One line on what it does.
    pub fn summary(self) -> &'static str {
        match self {
            Family::Sgd => "Plain stochastic gradient descent",
            Family::Momentum => "SGD with heavy-ball momentum",
            Family::Nesterov => "SGD with Nesterov momentum",
            Family::Adagrad => "Adagrad: steps shrink with the sum of all past squared gradients",
            Family::RmsProp => "RMSProp: steps divided by the RMS of recent gradients",
            Family::Adam => "Adam (Kingma and Ba): momentum and RMSProp, bias-corrected",
            Family::AdamW => "Adam with decoupled weight decay (Loshchilov and Hutter)",
        }
    }

    /// The learning rate that trains LeNet-5 on MNIST well with this family:
    /// 0.05 for the SGD family, 0.01 for Adagrad, 1e-3 for the others.
    pub fn default_lr(self) -> f64 {
        match self {
            Family::Sgd | Family::Momentum | Family::Nesterov => 0.05,
            Family::Adagrad => 0.01,
            Family::RmsProp | Family::Adam | Family::AdamW => 1e-3,
        }
    }

    /// The rule with PyTorch's defaults but for the rate ([`Family::default_lr`])
    /// and, for `momentum` and `nesterov`, μ = 0.9.
    ///
    /// ```
    /// use saddle::optim::Family;
    /// let spec = Family::Nesterov.spec();
    /// assert_eq!(spec.to_string(), "SGD(lr=0.05, momentum=0.9, dampening=0, weight_decay=0, nesterov=true)");
    /// ```
    pub fn spec(self) -> OptimizerSpec {
        let lr = self.default_lr();
        match self {
            Family::Sgd => SgdConfig { lr, ..Default::default() }.into(),
            Family::Momentum => SgdConfig { lr, momentum: 0.9, ..Default::default() }.into(),
            Family::Nesterov => SgdConfig { lr, momentum: 0.9, nesterov: true, ..Default::default() }.into(),
            Family::Adagrad => AdagradConfig { lr, ..Default::default() }.into(),
            Family::RmsProp => RmsPropConfig { lr, ..Default::default() }.into(),
            Family::Adam => AdamConfig { lr, ..Default::default() }.into(),
            Family::AdamW => AdamConfig { lr, ..AdamConfig::adamw() }.into(),
        }
    }
}

impl FromStr for Family {
    type Err = Error;
    fn from_str(name: &str) -> Result<Self> {
        Family::ALL.into_iter().find(|f| f.name() == name).ok_or_else(|| {
            let names: Vec<&str> = Family::ALL.iter().map(|f| f.name()).collect();
            Error::config("optim", format!("unknown optimizer '{name}'; expected one of {}", names.join(", ")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_reads_back_what_it_writes() {
        let odd = [
            OptimizerSpec::from(SgdConfig { lr: 0.1 + 0.2, momentum: 0.85, dampening: 0.1, ..Default::default() }),
            AdagradConfig { lr_decay: 1e-4, initial_accumulator_value: 0.1, ..Default::default() }.into(),
            RmsPropConfig { alpha: 0.9, momentum: 0.5, centered: true, weight_decay: 3e-5, ..Default::default() }
                .into(),
            AdamConfig { betas: (0.8, 0.99), amsgrad: true, weight_decay: WeightDecay::L2(1e-3), ..Default::default() }
                .into(),
        ];
        for spec in Family::ALL.map(Family::spec).iter().chain(&odd) {
            let text = spec.to_string();
            assert_eq!(&text.parse::<OptimizerSpec>().unwrap(), spec, "{text}");
            let json = serde_json::to_string(spec).unwrap();
            assert_eq!(&serde_json::from_str::<OptimizerSpec>(&json).unwrap(), spec, "{json}");
            assert_eq!(spec.family().spec().family(), spec.family());
        }
    }

    #[test]
    fn bad_text_names_what_is_wrong() {
        for (text, needle) in [
            ("Adam", "expected NAME(key=value, …)"),
            ("Adam(lr=0.1", "no closing parenthesis"),
            ("Adam(lr=x)", "lr must be a number, got 'x'"),
            ("Adam(lr=1, lr=2)", "'lr' is given twice"),
            ("Adam(momentum=0.9)", "unknown hyperparameter 'momentum'"),
            ("Adam(betas=(0.9, 1))", "betas[1]: must be in [0, 1), got 1"),
            ("SGD(nesterov=true)", "nesterov: needs momentum > 0 and dampening = 0"),
            ("SGD(lr=-1)", "lr: must be a finite number ≥ 0, got -1"),
            ("Lion(lr=1)", "unknown optimizer 'Lion'"),
        ] {
            let e = text.parse::<OptimizerSpec>().unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
        assert!("sgdd".parse::<Family>().unwrap_err().to_string().contains("expected one of sgd, momentum"));
    }
}
