//! `RUN/report.html`: one self-contained page (inline SVG and CSS, no network)
//! with the curves of training, the verdicts, the Hessian spectrum, the
//! gradient flow and the loss landscape.
//!
//! A short script at the end counts the figures that drew (an SVG with a
//! non-empty box and shapes in it) and writes the count into
//! `<body data-rendered="K/N">`, so that a headless browser can check it.

use crate::plot::{heatmap_svg, lines_svg, Series};
use saddle::diagnose::{Diagnosis, Finding, Record, Verdict};
use saddle::nn::Module;
use saddle::train::Run;
use saddle::Result;
use std::fmt::Write as _;
use std::path::Path;

/// What the page shows: the run and what its diagnosis found.
pub struct Report<'a> {
    pub run: &'a Run,
    pub diagnosis: &'a Diagnosis,
}

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn series(name: &str, r: &[Record], f: impl Fn(&Record) -> f32) -> Series {
    Series { name: name.into(), points: r.iter().map(|x| (x.step as f64, f(x) as f64)).collect() }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}\
.verdict{border-left:6px solid #d62728;background:#fafafa;padding:.6em 1em;margin:1em 0}\
.verdict.ok{border-color:#2ca02c}.verdict h3{margin:.2em 0}.verdict li{font-family:monospace;font-size:.9em}\
figure{margin:1em 0}figure svg{max-width:100%;height:auto}figcaption{color:#555;font-size:.9em}\
table{border-collapse:collapse}td{padding:.2em 1em .2em 0}";

const CHECK: &str = "<script>window.addEventListener('load',function(){var f=document.querySelectorAll('figure svg'),k=0;\
f.forEach(function(s){var b=s.getBBox();if(b.width>100&&b.height>100&&s.querySelectorAll('path,polyline,rect,line,text').length>10)k++;});\
document.body.setAttribute('data-rendered',k+'/'+f.length);});</script>";

/// Writes the page to `path`, atomically.
pub fn write(path: &Path, r: &Report) -> Result<()> {
    let mut h = header(r);
    h += &verdicts(r.diagnosis);
    h += &training_figures(r.diagnosis, &r.run.model);
    h += &curvature_figures(r.diagnosis);
    h += CHECK;
    h += "</body></html>\n";
    saddle::io::write_atomically(path, h.as_bytes())
}

/// A titled figure with its caption.
fn figure(h: &mut String, title: &str, svg: String, caption: &str) {
    let _ = write!(h, "<h2>{}</h2><figure>{svg}<figcaption>{}</figcaption></figure>", esc(title), esc(caption));
}

/// The page's head and the run's settings.
fn header(r: &Report) -> String {
    let s = &r.run.summary;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>saddle diagnosis: {name}</title><style>{STYLE}</style></head><body>\
         <h1>Why did the loss stop falling? <small>{name}</small></h1>\
         <table><tr><td>task</td><td>{task}, {model} ({params} parameters)</td></tr>\
         <tr><td>training</td><td>{epochs} epochs, {steps} steps, seed {seed}; optimizer {opt}; schedule {sched}</td></tr>\
         <tr><td>result</td><td>{split} loss {tl:.4}, accuracy {ta:.2}%</td></tr></table>",
        name = esc(&r.run.path.display().to_string()),
        task = esc(&s.task),
        model = esc(&s.model),
        params = s.parameters,
        epochs = s.epochs,
        steps = s.steps,
        seed = s.seed,
        opt = esc(&r.run.config.spec.optimizer.to_string()),
        sched = esc(&r.run.config.spec.schedule.to_string()),
        split = esc(&s.held_out),
        tl = s.held_out_loss,
        ta = 100.0 * s.held_out_accuracy,
    );
    h
}

/// How the `i`-th finding is introduced: `plateau 2 (steps 300–900)`, or for
/// a stretch that is still falling, `steps 300–900 (healthy)`.
pub fn heading(i: usize, f: &Finding) -> String {
    if f.verdict.is_problem() || f.verdict == Verdict::LocalMinimum {
        format!("plateau {} (steps {}–{})", i + 1, f.from_step, f.to_step)
    } else {
        format!("steps {}–{} (healthy)", f.from_step, f.to_step)
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or(String::new(), |f| f.to_uppercase().chain(c).collect())
}

/// A box per plateau and one for the final weights.
fn verdicts(d: &Diagnosis) -> String {
    let mut h = String::new();
    h += "<h2>Verdicts</h2>";
    if d.findings.is_empty() {
        h += "<div class=\"verdict ok\"><h3>No plateau</h3><p>The loss kept falling over the whole run.</p></div>";
    }
    for (i, f) in d.findings.iter().enumerate() {
        let _ = write!(
            h,
            "<div class=\"verdict{}\"><h3>{}: {}</h3><ul>",
            if f.verdict.is_problem() { "" } else { " ok" },
            esc(&capitalized(&heading(i, f))),
            esc(&f.verdict.to_string())
        );
        for line in &f.evidence {
            let _ = write!(h, "<li>{}</li>", esc(line));
        }
        let _ = write!(h, "</ul><p><b>Try:</b> {}</p></div>", esc(&f.advice));
    }

    // Weights still descending but held back by a problem on the plateau that reaches them.
    let held_back = d.findings.last().is_some_and(|f| f.to_step >= d.end.to_step && f.verdict.is_problem());
    let _ = write!(
        h,
        "<div class=\"verdict{}\"><h3>Final weights (step {}): {}</h3><ul>",
        if d.end.verdict.is_problem() || held_back { "" } else { " ok" },
        d.end.to_step,
        esc(&d.end.verdict.to_string())
    );
    for line in &d.end.evidence {
        let _ = write!(h, "<li>{}</li>", esc(line));
    }
    let _ = write!(h, "</ul><p><b>Try:</b> {}</p></div>", esc(&d.end.advice));

    h
}

/// A legend label for each layer path: the path, the layer's type as the
/// model describes it and the shape of its weight, as `0 Conv2d [6, 1, 5, 5]`
/// (a `Sequential`'s layers are named by their index, as in PyTorch).
fn layer_labels(model: &dyn Module, layers: &[String]) -> Vec<String> {
    let text = model.describe();
    let params = model.named_parameters();
    layers
        .iter()
        .map(|path| {
            let kind = text
                .lines()
                .find_map(|line| line.trim_start().strip_prefix(&format!("({path}): ")))
                .and_then(|rest| rest.split('(').next())
                .map_or(String::new(), |k| format!(" {k}"));
            let shape = params
                .iter()
                .find(|(name, _)| name.strip_prefix(path.as_str()).is_some_and(|rest| rest.starts_with('.')))
                .map_or(String::new(), |(_, t)| format!(" {:?}", t.shape()));
            format!("{path}{kind}{shape}")
        })
        .collect()
}

/// The curves recorded while training.
fn training_figures(d: &Diagnosis, model: &dyn Module) -> String {
    let mut h = String::new();
    let mut figure = |title: &str, svg: String, caption: &str| figure(&mut h, title, svg, caption);
    let rec = &d.records;
    let mut loss = vec![series("loss (mean over the interval)", rec, |x| x.loss)];
    // A loss that spans decades is drawn on a log scale, so that its plateaus are not flat lines near 0.
    let positive = rec.iter().map(|x| x.loss as f64).filter(|&l| l > 0.0 && l.is_finite());
    let (lo, hi) = positive.fold((f64::INFINITY, 0.0f64), |(lo, hi), l| (lo.min(l), hi.max(l)));
    let log_loss = hi > 10.0 * lo;
    for (i, f) in d.findings.iter().enumerate() {
        let on: Vec<Record> = rec.iter().filter(|x| x.step >= f.from_step && x.step <= f.to_step).cloned().collect();
        loss.push(series(&format!("{}: {}", heading(i, f), f.verdict), &on, |x| x.loss));
    }
    figure(
        "Loss",
        lines_svg(
            if log_loss { "training loss (log scale)" } else { "training loss" },
            "step",
            "loss",
            &loss,
            log_loss,
        ),
        "Plateaus found by saddle are drawn over the curve in their own colour.",
    );
    figure(
        "Gradient norm",
        lines_svg(
            "global gradient norm ‖g‖ (log scale)",
            "step",
            "‖g‖",
            &[series("mean", rec, |x| x.grad_norm), series("largest", rec, |x| x.grad_norm_max)],
            true,
        ),
        "Before clipping. Spikes of the largest norm far above the mean signal exploding gradients.",
    );
    figure(
        "Learning rate",
        lines_svg("learning rate η", "step", "η", &[series("", rec, |x| x.lr)], false),
        "As the schedule set it at each measured step.",
    );
    let per_layer: Vec<Series> = layer_labels(model, &d.layers)
        .iter()
        .enumerate()
        .map(|(i, l)| series(l, rec, |x| x.layer_norms.get(i).copied().unwrap_or(f32::NAN)))
        .collect();
    figure(
        "Gradient flow through the layers",
        lines_svg("gradient norm per layer (log scale)", "step", "‖g_layer‖", &per_layer, true),
        "Layers whose norms fall decades below the others learn nothing: vanishing gradients.",
    );
    figure(
        "Update size and direction",
        lines_svg(
            "update ratio ‖Δθ‖/‖θ‖ (log scale)",
            "step",
            "‖Δθ‖/‖θ‖",
            &[series("", rec, |x| x.update_ratio)],
            true,
        ),
        "About 1e-3 is healthy; far below, the learning rate barely moves the weights.",
    );
    figure(
        "Cosine between successive updates",
        lines_svg("cos(Δθ_t, Δθ_t−1)", "step", "cosine", &[series("", rec, |x| x.update_cosine)], false),
        "Negative: the updates point back and forth across a ravine (oscillation).",
    );
    h
}

/// The Hessian, the flow through time and the landscape at the final weights.
fn curvature_figures(d: &Diagnosis) -> String {
    let (mut h, c) = (String::new(), &d.curvature);
    let mut figure = |title: &str, svg: String, caption: &str| figure(&mut h, title, svg, caption);
    figure(
        "Hessian spectrum at the final weights",
        lines_svg("spectral density of the Hessian (SLQ, log scale)", "eigenvalue λ", "density", &[Series { name: String::new(), points: d.spectrum.clone() }], true),
        &format!(
            "λ_max = {:.4e}, λ_min = {:.4e} (λ_min/λ_max = {:.3}, Lanczos, {} steps); trace ≈ {:.4e} ± {:.1e} (Hutchinson); ‖∇L‖ = {:.3e}.",
            c.lambda_max,
            c.lambda_min,
            c.ratio(),
            c.iterations,
            d.trace.0,
            d.trace.1,
            c.grad_norm
        ),
    );
    if let Some(flow) = &d.flow {
        let pts = flow.iter().enumerate().map(|(t, &g)| ((t + 1) as f64, g)).collect();
        figure(
            "Gradient flow through time",
            lines_svg(
                "‖∂L/∂h_t‖ for the loss of each sentence's last word (log scale)",
                "step t",
                "‖∂L/∂h_t‖",
                &[Series { name: String::new(), points: pts }],
                true,
            ),
            "How far back in a sentence the error of its last word reaches.",
        );
    }
    figure(
        &format!("Loss landscape: from {} to the trained weights", d.line_from),
        lines_svg(
            "L((1−α)·θ_start + α·θ_final)",
            "α",
            "loss",
            &[Series { name: String::new(), points: d.line.clone() }],
            false,
        ),
        &format!(
            "A 1-D slice along the straight line between the two (Goodfellow et al. 2015); α = 0 is {}.",
            d.line_from
        ),
    );
    let (coords, plane) = (&d.plane.0, &d.plane.1);
    figure(
        "Loss landscape around the trained weights",
        heatmap_svg("L(θ + a·d₁ + b·d₂)", "a", "b", coords, coords, plane),
        "Two random directions normalized filter by filter (Li et al. 2018); the white dot is the trained weights; dark is low.",
    );
    h
}
