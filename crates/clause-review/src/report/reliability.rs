//! A reliability diagram as a self-contained SVG: for each curve, the mean
//! score of each bin against the share of its (example, label) pairs that
//! truly carry the label. Points on the diagonal mean what they say; points
//! below it are scores that run high.

use std::fmt::Write;

/// Plot area in pixels, and the margin around it for axes and labels.
const SIZE: f64 = 320.0;
const MARGIN: f64 = 48.0;

/// Colours of successive curves.
const COLOURS: [&str; 4] = ["#c0392b", "#2471a3", "#1e8449", "#7d3c98"];

/// One bin of a reliability curve: `(mean score, share true, pairs)`.
pub type Bin = (f64, f64, usize);

/// A named reliability curve.
pub type Curve<'a> = (&'a str, &'a [Bin]);

/// One SVG of the `curves`: each a name and its bins. Empty bins are skipped; a point's area grows with
/// the log of its pairs, so that sparse bins look sparse.
pub fn reliability_svg(curves: &[Curve<'_>]) -> String {
    let width = SIZE + 2.0 * MARGIN + 140.0;
    let height = SIZE + 2.0 * MARGIN;
    let x = |p: f64| MARGIN + p.clamp(0.0, 1.0) * SIZE;
    let y = |p: f64| MARGIN + (1.0 - p.clamp(0.0, 1.0)) * SIZE;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"##
    );
    let _ =
        write!(svg, r##"<rect x="{MARGIN}" y="{MARGIN}" width="{SIZE}" height="{SIZE}" fill="none" stroke="#888"/>"##);
    let _ = write!(
        svg,
        r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#bbb" stroke-dasharray="4 4"/>"##,
        x(0.0),
        y(0.0),
        x(1.0),
        y(1.0)
    );
    for tick in 0..=5 {
        let p = f64::from(tick) / 5.0;
        let _ = write!(svg, r##"<text x="{}" y="{}" text-anchor="middle">{p:.1}</text>"##, x(p), y(0.0) + 16.0);
        let _ = write!(svg, r##"<text x="{}" y="{}" text-anchor="end">{p:.1}</text>"##, x(0.0) - 6.0, y(p) + 4.0);
    }
    let _ = write!(svg, r##"<text x="{}" y="{}" text-anchor="middle">mean score in bin</text>"##, x(0.5), height - 8.0);
    let _ = write!(
        svg,
        r##"<text x="14" y="{}" text-anchor="middle" transform="rotate(-90 14 {})">share that carry the label</text>"##,
        y(0.5),
        y(0.5)
    );
    for (index, (name, bins)) in curves.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        let points: Vec<String> =
            bins.iter().filter(|b| b.2 > 0).map(|&(m, s, _)| format!("{:.1},{:.1}", x(m), y(s))).collect();
        let _ = write!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"##,
            points.join(" ")
        );
        for &(m, s, n) in bins.iter().filter(|b| b.2 > 0) {
            let r = 2.0 + (n as f64).ln_1p();
            let _ = write!(
                svg,
                r##"<circle cx="{:.1}" cy="{:.1}" r="{r:.1}" fill="{colour}" fill-opacity="0.6"><title>{name}: mean score {m:.3}, share true {s:.3}, {n} pairs</title></circle>"##,
                x(m),
                y(s)
            );
        }
        let ly = MARGIN + 16.0 + 20.0 * index as f64;
        let lx = MARGIN + SIZE + 16.0;
        let _ = write!(svg, r##"<rect x="{lx}" y="{}" width="12" height="12" fill="{colour}"/>"##, ly - 10.0);
        let _ = write!(svg, r##"<text x="{}" y="{ly}">{}</text>"##, lx + 18.0, escape(name));
    }
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_point_per_non_empty_bin_and_a_legend_per_curve() {
        let raw = [(0.05, 0.01, 900), (0.55, 0.2, 30), (0.0, 0.0, 0), (0.97, 0.9, 40)];
        let calibrated = [(0.05, 0.04, 910), (0.3, 0.25, 60)];
        let svg = reliability_svg(&[("raw <scores>", &raw), ("calibrated", &calibrated)]);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), 5);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("raw &lt;scores&gt;") && svg.contains("30 pairs"));
    }
}
