//! Sweep charts: block hit rate versus cache capacity in tokens (log axis),
//! one line per policy, Belady and the unbounded maximum dashed.
//!
//! Text needs a font even for SVG (plotters measures labels to lay them out)
//! and PNG files are rasterised here. The font is DejaVu Sans, taken from the
//! `dejavu` crate on crates.io and registered with plotters' `ab_glyph`
//! renderer, so no system font, fontconfig or CI install step is involved.
//! SVG files name the `sans-serif` family in their `<text>` elements.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{CliError, Result};
use crate::report::{format_si, SweepReport};

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        // The bytes are a valid TrueType font shipped by the crate; if
        // plotters still rejected them, PNG text would be missing, not a crash.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

/// Writes the chart of a sweep to `path` (`.svg` or `.png`).
pub fn plot_sweep(report: &SweepReport, path: &Path) -> Result<()> {
    let err = |message: String| CliError::Plot {
        path: path.to_path_buf(),
        message,
    };
    let size = (1000, 640);
    let Some(format) = ChartFormat::of(path) else {
        return Err(err(ChartFormat::EXPECTED.into()));
    };
    // Opened here first so that an unwritable path is reported as the
    // operating system words it, not through the drawing backend.
    std::fs::File::create(path).map_err(|e| err(e.to_string()))?;
    let drawing = |e: String| err(format!("could not draw the chart: {e}"));
    match format {
        ChartFormat::Svg => {
            register_font();
            let root = SVGBackend::new(path, size).into_drawing_area();
            draw(report, &root).map_err(drawing)?;
            root.present().map_err(|e| drawing(e.to_string()))
        }
        ChartFormat::Png => {
            register_font();
            let root = BitMapBackend::new(path, size).into_drawing_area();
            draw(report, &root).map_err(drawing)?;
            root.present().map_err(|e| drawing(e.to_string()))
        }
    }
}

/// The image formats a chart can be written in, chosen by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChartFormat {
    Svg,
    Png,
}

impl ChartFormat {
    /// What a chart's file name must end in.
    pub(crate) const EXPECTED: &'static str = "the file name must end in .svg or .png";

    /// The format `path`'s extension names (any case), if it is one of ours.
    pub(crate) fn of(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "svg" => Some(Self::Svg),
            "png" => Some(Self::Png),
            _ => None,
        }
    }
}

fn draw<DB: DrawingBackend>(
    report: &SweepReport,
    root: &DrawingArea<DB, Shift>,
) -> Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    root.fill(&WHITE).map_err(e)?;
    let xs: Vec<f64> = report
        .points
        .iter()
        .map(|p| p.capacity_tokens as f64)
        .collect();
    if xs.is_empty() {
        return Err("nothing to plot".into());
    }
    let x_min = xs.iter().cloned().fold(f64::INFINITY, f64::min);
    let x_max = xs.iter().cloned().fold(0.0, f64::max);
    let (x_lo, x_hi) = if x_max > x_min {
        (x_min / 1.15, x_max * 1.15)
    } else {
        (x_min / 2.0, x_max * 2.0)
    };
    let top = report
        .points
        .iter()
        .flat_map(|p| p.results.iter().map(|r| r.block_hit_rate))
        .chain(std::iter::once(report.unbounded.block_hit_rate))
        .fold(0.0f64, f64::max);
    let y_hi = ((top * 100.0 * 1.15 / 5.0).ceil() * 5.0).clamp(5.0, 100.0);

    let caption = format!(
        "block hit rate vs cache capacity: {} ({} timing)",
        short_source(&report.workload.source),
        report.timing
    );
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d((x_lo..x_hi).log_scale(), 0.0..y_hi)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(format!(
            "cache capacity in tokens (log scale; {} tokens per block)",
            report.block_tokens
        ))
        .y_desc("block hit rate (%)")
        .x_label_formatter(&|x| format_si(*x).replace(".00", ""))
        .y_label_formatter(&|y| format!("{y:.0}%"))
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(e)?;

    let policies = report.policies();
    let mut color_index = 0;
    for (i, name) in policies.iter().enumerate() {
        let pts: Vec<(f64, f64)> = report
            .points
            .iter()
            .filter_map(|p| {
                p.results
                    .get(i)
                    .map(|r| (p.capacity_tokens as f64, r.block_hit_rate * 100.0))
            })
            .collect();
        let (color, dashed) = if name == "belady" {
            (BLACK.to_rgba(), true)
        } else {
            color_index += 1;
            (Palette99::pick(color_index).to_rgba(), false)
        };
        // Earlier lines are drawn wider, so a line that another one covers
        // exactly (LRU and FIFO coincide under instant timing) stays visible.
        let width = if dashed {
            2
        } else {
            5u32.saturating_sub(i as u32).max(2)
        };
        let style = color.stroke_width(width);
        let anno = if dashed {
            chart
                .draw_series(DashedLineSeries::new(pts.clone(), 8, 5, style))
                .map_err(e)?
        } else {
            chart
                .draw_series(LineSeries::new(pts.clone(), style))
                .map_err(e)?
        };
        let label = if dashed {
            format!("{name} (offline optimum)")
        } else {
            name.clone()
        };
        // The legend's sample is drawn as the series is: dashed or solid.
        let gap = if dashed { 6 } else { 0 };
        let sample = color.stroke_width(width);
        anno.label(label).legend(move |(x, y)| {
            EmptyElement::at((x, y))
                + PathElement::new(vec![(0, 0), (9, 0)], sample)
                + PathElement::new(vec![(9 + gap, 0), (24, 0)], sample)
        });
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(e)?;
    }
    let max = report.unbounded.block_hit_rate * 100.0;
    let grey = RGBColor(120, 120, 120);
    chart
        .draw_series(DashedLineSeries::new(
            vec![(x_lo, max), (x_hi, max)],
            4,
            4,
            grey.stroke_width(2),
        ))
        .map_err(e)?
        .label(format!("unbounded maximum ({max:.2}%)"))
        .legend(move |(x, y)| {
            EmptyElement::at((x, y))
                + PathElement::new(vec![(0, 0), (9, 0)], grey.stroke_width(2))
                + PathElement::new(vec![(15, 0), (24, 0)], grey.stroke_width(2))
        });
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(e)?;
    Ok(())
}

/// The workload's source for a caption: file names of traces, the
/// generator's description as it is.
fn short_source(s: &str) -> String {
    if s.starts_with("generator(") {
        return s.to_string();
    }
    s.split(',')
        .map(str::trim)
        .map(|p| {
            Path::new(p)
                .file_name()
                .and_then(|f| f.to_str())
                .unwrap_or(p)
        })
        .collect::<Vec<_>>()
        .join(", ")
}
