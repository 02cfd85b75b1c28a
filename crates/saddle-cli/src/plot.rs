//! Plots as PNG and SVG, side by side: line charts (linear or log scale) and
//! 2-D trajectories over the contours of a function.
//!
//! Text is drawn with DejaVu Sans, bundled (assets/, with its licence), so a
//! fresh machine without fonts renders the same pictures.

use plotters::coord::Shift;
use plotters::prelude::*;
use saddle::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Once;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bundled font is valid: a failure here is a build problem.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// One named curve.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Colours that stay apart for up to eight series.
const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

fn err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::format(path, format!("could not draw the plot ({e})"))
}

/// Draws on a `width × height` RGB picture in memory, then writes it to `path`
/// as a PNG, atomically. (plotters' own PNG writer would bring in the `image`
/// crate and its codecs, a tenth of a clean build, for what `png` does here.)
fn write_png<E: std::fmt::Display>(
    path: &Path,
    (width, height): (u32, u32),
    draw: impl FnOnce(DrawingArea<BitMapBackend<'_>, Shift>) -> std::result::Result<(), E>,
) -> Result<()> {
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    draw(BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area()).map_err(|e| err(path, e))?;
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header().and_then(|mut w| w.write_image_data(&rgb)).map_err(|e| err(path, e))?;
    saddle::io::write_atomically(path, &bytes)
}

/// A tick label on an axis that spans `span`: `0` for what is zero but for
/// rounding (`-2.2e-16` on a grid from −1 to 1), else [`tick`].
fn tick_in(v: f64, span: f64) -> String {
    tick(if v.abs() < 1e-9 * span.abs() { 0.0 } else { v })
}

/// A short tick label: `0.25`, `1500`, `1e-5`.
fn tick(v: f64) -> String {
    if v != 0.0 && (v.abs() < 1e-2 || v.abs() >= 1e5) {
        let s = format!("{v:.1e}");
        s.replace(".0e", "e")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A linear axis over `range` with ticks at `ticks` (a log axis in log10 units).
struct Ticked {
    range: std::ops::Range<f64>,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;
    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let share = (v - self.range.start) / (self.range.end - self.range.start);
        limit.0 + (share * (limit.1 - limit.0) as f64).round() as i32
    }
    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }
    fn range(&self) -> std::ops::Range<f64> {
        self.range.clone()
    }
}

/// The corner of the plot that the fewest points fall in, for the legend.
fn legend_corner(series: &[Series], x: (f64, f64), y: (f64, f64), log: (bool, bool)) -> SeriesLabelPosition {
    let share = |v: f64, (a, b): (f64, f64)| (v - a) / (b - a);
    let (log_x, log_y) = log;
    let x = if log_x { (x.0.log10(), x.1.log10()) } else { x };
    let (y0, y1) = if log_y { (y.0.log10(), y.1.log10()) } else { y };
    let mut counts = [0usize; 4]; // upper right, lower right, upper left, lower left
    for &(px, py) in series.iter().flat_map(|s| &s.points) {
        let (px, py) = (if log_x { px.log10() } else { px }, if log_y { py.log10() } else { py });
        let (u, v) = (share(px, x), share(py, (y0, y1)));
        let (right, left, upper, lower) = (u > 0.6, u < 0.4, v > 0.65, v < 0.35);
        for (k, inside) in [right && upper, right && lower, left && upper, left && lower].into_iter().enumerate() {
            counts[k] += inside as usize;
        }
    }
    let best = (0..4).min_by_key(|&k| counts[k]).unwrap_or(0);
    [
        SeriesLabelPosition::UpperRight,
        SeriesLabelPosition::LowerRight,
        SeriesLabelPosition::UpperLeft,
        SeriesLabelPosition::LowerLeft,
    ][best]
        .clone()
}

/// Tick positions, in log10 units, for a log axis over `lo..hi` (log10 units).
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let (first, last) = (lo.floor() as i32, hi.ceil() as i32);
    // Every decade, or every 2nd, 5th, 10th, … so that at most about ten are labelled.
    let every = [1, 2, 5, 10, 20, 50, 100].into_iter().find(|&k| (last - first) / k <= 10).unwrap_or(100);
    let at = |mantissas: &[f64]| -> Vec<f64> {
        (first..=last)
            .filter(|e| e.rem_euclid(every) == 0)
            .flat_map(|e| mantissas.iter().map(move |m| m.log10() + e as f64))
            .filter(|v| (lo..=hi).contains(v))
            .collect()
    };
    // Over a short span, 1, 2 and 5 times each power; over a shorter one, every
    // digit; within a single digit, five evenly spaced values.
    let ticks = if hi - lo < 2.5 { at(&[1.0, 2.0, 5.0]) } else { at(&[1.0]) };
    let ticks =
        if ticks.len() < 3 && hi - lo < 1.0 { at(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]) } else { ticks };
    if ticks.len() < 2 {
        return (0..5).map(|k| lo + (hi - lo) * (k as f64 + 0.5) / 5.0).collect();
    }
    ticks
}

/// `stem.png` and `stem.svg`.
fn outputs(stem: &Path) -> [PathBuf; 2] {
    [stem.with_extension("png"), stem.with_extension("svg")]
}

/// Draws `series` as lines, to `stem.png` and `stem.svg`; the y axis is
/// logarithmic when `log_y` (non-positive values are then left out).
pub fn lines(
    stem: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_y: bool,
) -> Result<Vec<PathBuf>> {
    draw_both(stem, &LineSpec::new(title, x_label, y_label, series, (false, log_y)))
}

/// `spec` to `stem.png` and `stem.svg`.
fn draw_both(stem: &Path, spec: &LineSpec<'_>) -> Result<Vec<PathBuf>> {
    let [png, svg] = outputs(stem);
    write_png(&png, (900, 560), |area| draw_lines(area, spec))?;
    draw_lines(SVGBackend::new(&svg, (900, 560)).into_drawing_area(), spec).map_err(|e| err(&svg, e))?;
    Ok(vec![png, svg])
}

/// [`lines`] with a logarithmic x axis and a linear y axis (non-positive x left out).
pub fn lines_log_x(stem: &Path, title: &str, x_label: &str, y_label: &str, series: &[Series]) -> Result<Vec<PathBuf>> {
    draw_both(stem, &LineSpec::new(title, x_label, y_label, series, (true, false)))
}

/// [`lines`] as an SVG document in a string, for embedding in a page.
pub fn lines_svg(title: &str, x_label: &str, y_label: &str, series: &[Series], log_y: bool) -> String {
    let spec = LineSpec::new(title, x_label, y_label, series, (false, log_y));
    let mut out = String::new();
    // Drawing into a string has no outside failure; an error would be a bug in the spec.
    draw_lines(SVGBackend::with_string(&mut out, (900, 460)).into_drawing_area(), &spec)
        .unwrap_or_else(|e| panic!("plot '{title}': {e}"));
    out
}

/// The loss over a grid as a heat map with its value in each cell's colour
/// (dark = low), as an SVG string: `grid[i][j]` is at `(xs[i], ys[j])`.
pub fn heatmap_svg(title: &str, x_label: &str, y_label: &str, xs: &[f64], ys: &[f64], grid: &[Vec<f64>]) -> String {
    register_font();
    let mut out = String::new();
    let finite = grid.iter().flatten().copied().filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    // Square-root colours: the walls of a landscape rise fast, the floor is what matters.
    let shade = |v: f64| {
        let t = if hi > lo { ((v - lo) / (hi - lo)).sqrt() } else { 0.0 };
        let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 1.0 };
        HSLColor(0.65 - 0.65 * t, 0.75, 0.25 + 0.5 * t)
    };
    let cell = |v: &[f64], i: usize| {
        let lo = if i == 0 { v[0] - (v[1] - v[0]) / 2.0 } else { (v[i - 1] + v[i]) / 2.0 };
        let hi = if i + 1 == v.len() { v[i] + (v[i] - v[i - 1]) / 2.0 } else { (v[i] + v[i + 1]) / 2.0 };
        (lo, hi)
    };
    let mut draw = || -> std::result::Result<(), String> {
        let whole = SVGBackend::with_string(&mut out, (720, 560)).into_drawing_area();
        whole.fill(&WHITE).map_err(|e| e.to_string())?;
        let (root, bar) = whole.split_horizontally(610);
        let (x0, x1) = (cell(xs, 0).0, cell(xs, xs.len() - 1).1);
        let (y0, y1) = (cell(ys, 0).0, cell(ys, ys.len() - 1).1);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .label_style(("sans-serif", 14))
            .x_label_formatter(&|v| tick_in(*v, x1 - x0))
            .y_label_formatter(&|v| tick_in(*v, y1 - y0))
            .draw()
            .map_err(|e| e.to_string())?;
        let cells = (0..xs.len()).flat_map(|i| (0..ys.len()).map(move |j| (i, j)));
        chart
            .draw_series(cells.map(|(i, j)| {
                let ((a, b), (c, d)) = (cell(xs, i), cell(ys, j));
                Rectangle::new([(a, c), (b, d)], shade(grid[i][j]).filled())
            }))
            .map_err(|e| e.to_string())?;
        chart.draw_series(std::iter::once(Circle::new((0.0, 0.0), 5, WHITE.filled()))).map_err(|e| e.to_string())?;
        // The colour bar: the same shades from the lowest value to the highest,
        // labelled in loss (none when no value is finite: a diverged run).
        if !lo.is_finite() {
            return whole.present().map_err(|e| e.to_string());
        }
        let (b0, b1) = if hi > lo { (lo, hi) } else { (lo - 0.5, lo + 0.5) };
        let mut key = ChartBuilder::on(&bar)
            .caption("loss", ("sans-serif", 14))
            .margin_top(40)
            .margin_bottom(52)
            .margin_right(8)
            .y_label_area_size(62)
            .build_cartesian_2d(0.0..1.0, b0..b1)
            .map_err(|e| e.to_string())?;
        key.configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .label_style(("sans-serif", 13))
            .y_label_formatter(&|v| tick_in(*v, b1 - b0))
            .draw()
            .map_err(|e| e.to_string())?;
        let steps = 100;
        key.draw_series((0..steps).map(|k| {
            let (a, b) = (b0 + (b1 - b0) * k as f64 / steps as f64, b0 + (b1 - b0) * (k + 1) as f64 / steps as f64);
            Rectangle::new([(0.0, a), (1.0, b)], shade((a + b) / 2.0).filled())
        }))
        .map_err(|e| e.to_string())?;
        whole.present().map_err(|e| e.to_string())
    };
    draw().unwrap_or_else(|e| panic!("plot '{title}': {e}"));
    out
}

struct LineSpec<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    series: &'a [Series],
    log_x: bool,
    log_y: bool,
    x: (f64, f64),
    y: (f64, f64),
}

impl<'a> LineSpec<'a> {
    /// The axes' ranges from the finite points (positive ones on a log scale).
    fn new(title: &'a str, x_label: &'a str, y_label: &'a str, series: &'a [Series], log: (bool, bool)) -> Self {
        register_font();
        let (log_x, log_y) = log;
        let pts = series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|p| p.0.is_finite() && p.1.is_finite() && (!log_x || p.0 > 0.0) && (!log_y || p.1 > 0.0));
        let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
        for &(x, y) in pts {
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
        }
        if !x0.is_finite() {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.1, 1.0);
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        if y1 <= y0 {
            // A constant: half its size above and below it (on a log axis, a factor of 2 each way).
            let half = if y0 == 0.0 { 1.0 } else { 0.5 * y0.abs() };
            (y0, y1) = if log_y { (y0 / 2.0, y1 * 2.0) } else { (y0 - half, y1 + half) };
        }
        LineSpec { title, x_label, y_label, series, log_x, log_y, x: (x0, x1), y: (y0, y1) }
    }
}

fn draw_lines<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    spec: &LineSpec<'_>,
) -> std::result::Result<(), String> {
    let LineSpec { title, x_label, y_label, series, log_x, log_y, x: (x0, x1), y: (y0, y1) } = *spec;
    {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut b = ChartBuilder::on(&root);
        b.caption(title, ("sans-serif", 22)).margin(12).x_label_area_size(40).y_label_area_size(70);
        macro_rules! body {
            ($chart:expr) => {{
                let mut chart = $chart.map_err(|e| e.to_string())?;
                chart
                    .configure_mesh()
                    .x_desc(x_label)
                    .y_desc(y_label)
                    .y_label_formatter(&|v| if log_y { tick(10f64.powf(*v)) } else { tick_in(*v, y1 - y0) })
                    .x_label_formatter(&|v| if log_x { tick(10f64.powf(*v)) } else { tick_in(*v, x1 - x0) })
                    .label_style(("sans-serif", 14))
                    .draw()
                    .map_err(|e| e.to_string())?;
                for (i, s) in series.iter().enumerate() {
                    let color = COLORS[i % COLORS.len()];
                    let pts: Vec<(f64, f64)> = s
                        .points
                        .iter()
                        .copied()
                        .filter(|p| {
                            p.0.is_finite() && p.1.is_finite() && (!log_x || p.0 > 0.0) && (!log_y || p.1 > 0.0)
                        })
                        .map(|(x, y)| (if log_x { x.log10() } else { x }, if log_y { y.log10() } else { y }))
                        .collect();
                    chart
                        .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                        .map_err(|e| e.to_string())?
                        .label(s.name.clone())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
                }
                if series.len() > 1 || !series.first().is_some_and(|s| s.name.is_empty()) {
                    chart
                        .configure_series_labels()
                        .label_font(("sans-serif", 14))
                        .background_style(WHITE.mix(0.85))
                        .border_style(BLACK)
                        .position(legend_corner(series, spec.x, spec.y, (log_x, log_y)))
                        .draw()
                        .map_err(|e| e.to_string())?;
                }
            }};
        }
        if log_x {
            // The same for a log x axis (with a linear y axis).
            let (x0, x1) = (x0.log10(), x1.log10());
            let pad = 0.05 * (y1 - y0);
            body!(b.build_cartesian_2d(Ticked { range: x0..x1, ticks: log_ticks(x0, x1) }, (y0 - pad)..(y1 + pad)));
        } else if log_y {
            // log10 of the values on a linear axis, ticks where we choose: 1, 2 and 5
            // times each power of ten over a short span, the powers alone (every
            // one, or every few) over a long one, each labelled with its value.
            let (y0, y1) = (y0.log10(), y1.log10());
            let pad = 0.05 * (y1 - y0).max(0.1);
            let (lo, hi) = (y0 - pad, y1 + pad);
            body!(b.build_cartesian_2d(x0..x1, Ticked { range: lo..hi, ticks: log_ticks(lo, hi) }));
        } else {
            let pad = 0.05 * (y1 - y0);
            body!(b.build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad)));
        }
        root.present().map_err(|e| e.to_string())
    }
}

/// Draws the contours of `f` over `[x0, x1] × [y0, y1]` as shaded bands, and
/// each trajectory as a line with its start marked, to `stem.png` and `stem.svg`.
pub fn trajectories(
    stem: &Path,
    title: &str,
    f: &dyn Fn(f64, f64) -> f64,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
    paths: &[Series],
) -> Result<Vec<PathBuf>> {
    register_font();
    // Contour levels on a grid, by rank so that any range of values shows.
    let n = 120;
    let grid: Vec<(f64, f64, f64)> = (0..n * n)
        .map(|i| {
            let (x, y) = (
                x0 + (x1 - x0) * ((i % n) as f64 + 0.5) / n as f64,
                y0 + (y1 - y0) * ((i / n) as f64 + 0.5) / n as f64,
            );
            (x, y, f(x, y))
        })
        .collect();
    let mut values: Vec<f64> = grid.iter().map(|g| g.2).filter(|v| v.is_finite()).collect();
    values.sort_by(|a, b| a.total_cmp(b));
    let levels = 14;
    let cuts: Vec<f64> = (1..levels).map(|k| values.get(k * values.len() / levels).copied().unwrap_or(0.0)).collect();
    let (dx, dy) = ((x1 - x0) / n as f64, (y1 - y0) / n as f64);
    let [png, svg] = outputs(stem);
    let spec =
        TrajectorySpec { title, x: (x0, x1), y: (y0, y1), grid: &grid, cuts: &cuts, levels, cell: (dx, dy), paths };
    write_png(&png, (760, 640), |area| draw_trajectories(area, &spec))?;
    draw_trajectories(SVGBackend::new(&svg, (760, 640)).into_drawing_area(), &spec).map_err(|e| err(&svg, e))?;
    Ok(vec![png, svg])
}

struct TrajectorySpec<'a> {
    title: &'a str,
    x: (f64, f64),
    y: (f64, f64),
    grid: &'a [(f64, f64, f64)],
    cuts: &'a [f64],
    levels: usize,
    cell: (f64, f64),
    paths: &'a [Series],
}

fn draw_trajectories<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    spec: &TrajectorySpec<'_>,
) -> std::result::Result<(), String> {
    let TrajectorySpec { title, x: (x0, x1), y: (y0, y1), grid, cuts, levels, cell: (dx, dy), paths } = *spec;
    {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(grid.iter().map(|&(x, y, v)| {
                let band = cuts.iter().filter(|&&c| v > c).count() as f64 / levels as f64;
                let shade = (255.0 - 120.0 * band) as u8;
                Rectangle::new(
                    [(x - dx / 2.0, y - dy / 2.0), (x + dx / 2.0, y + dy / 2.0)],
                    RGBColor(shade, shade, 255).filled(),
                )
            }))
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("x")
            .y_desc("y")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, s) in paths.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .copied()
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .map(|(x, y)| (x.clamp(x0, x1), y.clamp(y0, y1)))
                .collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(s.name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            if let Some(&p) = pts.last() {
                chart.draw_series(std::iter::once(Circle::new(p, 4, color.filled()))).map_err(|e| e.to_string())?;
            }
        }
        if let Some(s) = paths.first().and_then(|s| s.points.first()) {
            chart.draw_series(std::iter::once(Cross::new(*s, 7, BLACK.stroke_width(2)))).map_err(|e| e.to_string())?;
        }
        chart
            .configure_series_labels()
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(legend_corner(spec.paths, spec.x, spec.y, (false, false)))
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())
    }
}
