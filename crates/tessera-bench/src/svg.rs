//! An SVG chart of the scaling curves: time per iteration against the swept
//! parameter, log-log, one line per backend, one panel per sweep.

use std::fmt::Write;

use crate::report::Report;

const PANEL_W: f64 = 360.0;
const PANEL_H: f64 = 260.0;
const MARGIN: f64 = 72.0;
const COLORS: &[&str] = &[
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
];

/// The sweeps charted: (group, x-axis title).
pub const SWEEPS: &[(&str, &str)] = &[
    ("vars", "variables"),
    ("capacity", "capacity"),
    ("batch", "batch (environments)"),
    ("gemm", "GEMM size n (n x n x n)"),
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Renders the chart; panels without data are left out.
pub fn scaling_chart(report: &Report) -> String {
    let panels: Vec<_> = SWEEPS
        .iter()
        .filter(|(g, _)| report.results.iter().any(|m| m.group == *g))
        .collect();
    let width = MARGIN + panels.len().max(1) as f64 * (PANEL_W + MARGIN);
    let legend_h = 18.0 * report.backends.len() as f64 + 10.0;
    let height = PANEL_H + 2.0 * MARGIN + legend_h;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    for (p, (group, xtitle)) in panels.iter().enumerate() {
        let x0 = MARGIN + p as f64 * (PANEL_W + MARGIN);
        let y0 = MARGIN;
        let points: Vec<_> = report
            .results
            .iter()
            .filter(|m| m.group == *group)
            .collect();
        let (xs, ys): (Vec<f64>, Vec<f64>) =
            points.iter().map(|m| (m.x, m.timing.median_ns)).unzip();
        let lg = |v: f64| v.max(1e-9).log10();
        let (xmin, xmax) = bounds(xs.iter().map(|&v| lg(v)));
        let (ymin, ymax) = bounds(ys.iter().map(|&v| lg(v)));
        let px = |v: f64| x0 + (lg(v) - xmin) / (xmax - xmin) * PANEL_W;
        let py = |v: f64| y0 + PANEL_H - (lg(v) - ymin) / (ymax - ymin) * PANEL_H;
        let _ = writeln!(
            svg,
            r##"<rect x="{x0}" y="{y0}" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#999"/>"##
        );
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle" font-size="13">time per iteration vs {}</text>"#,
            x0 + PANEL_W / 2.0,
            y0 - 12.0,
            escape(xtitle)
        );
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">{} (log)</text>"#,
            x0 + PANEL_W / 2.0,
            y0 + PANEL_H + 34.0,
            escape(xtitle)
        );
        // Decade ticks on y, data ticks on x.
        for d in (ymin.floor() as i32)..=(ymax.ceil() as i32) {
            let v = 10f64.powi(d);
            if lg(v) < ymin || lg(v) > ymax {
                continue;
            }
            let y = py(v);
            let _ = writeln!(
                svg,
                r##"<line x1="{x0}" y1="{y}" x2="{}" y2="{y}" stroke="#eee"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
                x0 + PANEL_W,
                x0 - 4.0,
                y + 4.0,
                decade_label(d)
            );
        }
        let mut xticks: Vec<f64> = xs.clone();
        xticks.sort_by(f64::total_cmp);
        xticks.dedup();
        for v in xticks {
            let _ = writeln!(
                svg,
                r#"<text x="{}" y="{}" text-anchor="middle">{v}</text>"#,
                px(v),
                y0 + PANEL_H + 16.0
            );
        }
        for (i, b) in report.backends.iter().enumerate() {
            let mut line: Vec<(f64, f64)> = points
                .iter()
                .filter(|m| m.backend == b.id)
                .map(|m| (m.x, m.timing.median_ns))
                .collect();
            if line.is_empty() {
                continue;
            }
            line.sort_by(|a, b| a.0.total_cmp(&b.0));
            let color = COLORS[i % COLORS.len()];
            let path: Vec<String> = line
                .iter()
                .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
                .collect();
            let _ = writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
                path.join(" ")
            );
            for (x, y) in line {
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                    px(x),
                    py(y)
                );
            }
        }
    }
    for (i, b) in report.backends.iter().enumerate() {
        let y = PANEL_H + 2.0 * MARGIN + 18.0 * i as f64;
        let color = COLORS[i % COLORS.len()];
        let _ = writeln!(
            svg,
            r#"<rect x="{MARGIN}" y="{}" width="14" height="4" fill="{color}"/><text x="{}" y="{}">{}</text>"#,
            y - 4.0,
            MARGIN + 20.0,
            y,
            escape(&b.label)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// `10^d` nanoseconds as a short label: 1 ns, 10 µs, 100 ms.
fn decade_label(d: i32) -> String {
    let units = ["ns", "µs", "ms", "s"];
    let unit = (d.max(0) / 3).min(3);
    format!(
        "{} {}",
        10u64.pow((d - 3 * unit) as u32),
        units[unit as usize]
    )
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(0.05);
    (lo - pad, hi + pad)
}

#[cfg(test)]
mod tests {
    #[test]
    fn decade_labels_are_short() {
        assert_eq!(super::decade_label(0), "1 ns");
        assert_eq!(super::decade_label(4), "10 µs");
        assert_eq!(super::decade_label(8), "100 ms");
        assert_eq!(super::decade_label(9), "1 s");
    }
}
