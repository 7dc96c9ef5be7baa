//! `clause report`: render a classified draft as one self-contained HTML page or as Markdown.
//!
//! Rendering is pure: plain data in, a `String` out, so the command decides where the text goes
//! and the tests need no model. The HTML page must work offline and when mailed around, so it
//! loads nothing: inline CSS, a small inline script, no fonts or images, and a Content Security
//! Policy that forbids any fetch even if a future edit slips one in.

use std::collections::HashSet;
use std::fmt::Write as _;

mod reliability;
pub use reliability::{Bin, Curve, reliability_svg};

/// Writes formatted text to a `String`. Writing to a `String` cannot fail, so the `fmt::Result`
/// is dropped here once instead of at every call.
macro_rules! w {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
    }};
}

/// Everything a report shows: the draft, the model that read it and one entry per provision.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// The draft's name, usually its file name.
    pub title: String,
    /// The model directory or name.
    pub model: String,
    /// Free text saying when the report was made (the caller formats the date).
    pub generated: String,
    /// The labels, in the model's order; provisions refer to them by index.
    pub labels: Vec<ReportLabel>,
    /// The draft's provisions, in document order.
    pub provisions: Vec<ReportProvision>,
}

/// One label the model predicts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportLabel {
    /// Short name, shown on badges (e.g. "surveillance").
    pub name: String,
    /// What the label means, shown in the legend.
    pub description: String,
    /// The probability at or above which the label is predicted.
    pub threshold: f32,
}

/// One provision of the draft with the model's verdict on it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportProvision {
    /// Stable identifier of the provision (also the base of its HTML anchor).
    pub id: String,
    /// Heading such as "Art. 27.1 – Preservation of stored data" or "Preamble".
    pub heading: String,
    /// The provision's full text.
    pub text: String,
    /// One probability per label, in label order.
    pub scores: Vec<f32>,
    /// Indices of the predicted labels.
    pub labels: Vec<usize>,
    /// Occlusion explanations, at most one per label is shown.
    pub explanations: Vec<Explanation>,
}

/// Why a label was predicted: the spans whose removal lowers its probability.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Explanation {
    /// Index of the label explained.
    pub label: usize,
    /// Occluded text spans (substrings of the provision text) with the probability drop when
    /// each is removed; a negative drop means removing it raised the probability.
    pub spans: Vec<(String, f32)>,
}

/// Badge colours, one per label index, cycling when there are more labels. All are dark
/// enough for white text to reach WCAG AA contrast (4.5:1) on them.
const PALETTE: [&str; 10] =
    ["#b91c1c", "#1d4ed8", "#047857", "#7e22ce", "#b45309", "#0e7490", "#be185d", "#4d7c0f", "#4338ca", "#57534e"];

/// Colour of label `index`.
fn colour(index: usize) -> &'static str {
    PALETTE[index % PALETTE.len()]
}

/// Escapes text for HTML element content and double- or single-quoted attributes.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A probability with two decimals, or a dash where the model gave none.
fn prob(score: Option<f32>) -> String {
    match score {
        Some(score) => format!("{score:.2}"),
        None => "–".to_string(),
    }
}

/// A probability drop as a signed change: a drop of 0.41 reads "−0.41" (U+2212 minus, which
/// screen readers say as "minus"), a rise reads "+0.05".
fn drop_text(drop: f32) -> String {
    if drop >= 0.0 { format!("\u{2212}{drop:.2}") } else { format!("+{:.2}", -drop) }
}

/// The provision's predicted labels: valid indices only, each once, highest probability first
/// (ties keep the caller's order), so the first is the "top" label that colours the border.
fn predicted(provision: &ReportProvision, label_count: usize) -> Vec<usize> {
    let mut seen = HashSet::new();
    let mut labels: Vec<usize> =
        provision.labels.iter().copied().filter(|&l| l < label_count && seen.insert(l)).collect();
    let score = |l: usize| provision.scores.get(l).copied().filter(|s| !s.is_nan()).unwrap_or(f32::NEG_INFINITY);
    labels.sort_by(|&a, &b| score(b).total_cmp(&score(a)));
    labels
}

/// How many provisions carry each label, and how many carry none.
fn counts(report: &Report) -> (Vec<usize>, usize) {
    let mut per_label = vec![0; report.labels.len()];
    let mut unlabelled = 0;
    for provision in &report.provisions {
        let labels = predicted(provision, report.labels.len());
        if labels.is_empty() {
            unlabelled += 1;
        }
        for l in labels {
            per_label[l] += 1;
        }
    }
    (per_label, unlabelled)
}

/// Anchor ids for the provisions: the id reduced to characters that are safe in a URL fragment
/// and a CSS selector, prefixed so it cannot clash with the page's own ids, and made unique
/// because two ids may sanitise to the same string.
fn anchor_ids(provisions: &[ReportProvision]) -> Vec<String> {
    let mut used = HashSet::new();
    provisions
        .iter()
        .enumerate()
        .map(|(index, provision)| {
            let mut base = String::new();
            for c in provision.id.chars() {
                if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                    base.push(c);
                } else if !base.is_empty() && !base.ends_with('-') {
                    base.push('-');
                }
            }
            let base = base.trim_end_matches('-');
            let base = if base.is_empty() { format!("p-{}", index + 1) } else { format!("p-{base}") };
            let mut anchor = base.clone();
            let mut n = 2;
            while !used.insert(anchor.clone()) {
                anchor = format!("{base}-{n}");
                n += 1;
            }
            anchor
        })
        .collect()
}

/// Finds each span in the text: its byte range, or `None` when it is empty or absent. An
/// explanation only gives the span's text, so a repeated span is placed at its first
/// occurrence not already taken by an identical span.
fn locate_spans(text: &str, spans: &[(String, f32)]) -> Vec<Option<(usize, usize)>> {
    let mut taken: HashSet<(usize, usize)> = HashSet::new();
    spans
        .iter()
        .map(|(span, _)| {
            if span.is_empty() {
                return None;
            }
            let mut occurrences = text.match_indices(span.as_str()).map(|(start, s)| (start, start + s.len()));
            let first = occurrences.clone().next()?;
            let range = occurrences.find(|range| !taken.contains(range)).unwrap_or(first);
            taken.insert(range);
            Some(range)
        })
        .collect()
}

/// The text, escaped, with the located spans wrapped in `<mark>`. Overlapping spans are cut at
/// every span boundary so marks never nest or cross; each piece shows the largest drop among
/// the spans covering it, as its shade and its tooltip.
fn highlight(text: &str, spans: &[(String, f32)], located: &[Option<(usize, usize)>]) -> String {
    let found: Vec<((usize, usize), f32)> =
        located.iter().zip(spans).filter_map(|(range, (_, drop))| range.map(|r| (r, *drop))).collect();
    let strongest = found.iter().map(|(_, d)| d.abs()).filter(|d| d.is_finite()).fold(0.0_f32, f32::max);
    let mut cuts: Vec<usize> = vec![0, text.len()];
    for ((start, end), _) in &found {
        cuts.push(*start);
        cuts.push(*end);
    }
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = String::new();
    for pair in cuts.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let piece = esc(&text[a..b]);
        let covering: Vec<f32> =
            found.iter().filter(|((start, end), _)| *start <= a && b <= *end).map(|(_, d)| *d).collect();
        match covering.iter().copied().reduce(f32::max) {
            None => out.push_str(&piece),
            Some(drop) => {
                // The shade scales with the drop so the strongest evidence stands out; the floor
                // keeps weak spans visible.
                let share = if strongest > 0.0 && drop.is_finite() { drop.abs() / strongest } else { 1.0 };
                let alpha = 0.3 + 0.7 * share;
                // An underline tells the reader that spans overlap here, which the shade alone
                // cannot show.
                let class = match (drop < 0.0, covering.len() > 1) {
                    (false, false) => "",
                    (false, true) => " class=\"multi\"",
                    (true, false) => " class=\"up\"",
                    (true, true) => " class=\"up multi\"",
                };
                let title = esc(&format!("removing this changes the probability by {}", drop_text(drop)));
                w!(out, "<mark{class} style=\"--a:{alpha:.2}\" title=\"{title}\">{piece}</mark>");
            }
        }
    }
    out
}

/// The page style. Colours keep body text at WCAG AA contrast or better; `@media print` shows
/// every provision and every `<details>`, whatever the filter and disclosure state.
const CSS: &str = r#"
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --panel: #f6f8fa; --link: #0550ae; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; color: var(--fg); background: #fff;
  font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
.page-header, main { max-width: 62rem; margin: 0 auto; padding: 0 1rem; }
.page-header { padding-top: 1.5rem; padding-bottom: .5rem; }
h1 { font-size: 1.6rem; line-height: 1.25; margin: 0 0 .5rem; overflow-wrap: anywhere; }
h2 { font-size: 1.2rem; margin: 1.75rem 0 .6rem; border-bottom: 1px solid var(--line); padding-bottom: .2rem; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: .1rem .75rem; margin: 0; color: var(--muted); }
.meta dt { font-weight: 600; }
.meta dd { margin: 0; overflow-wrap: anywhere; }
.chart { width: 100%; border-collapse: collapse; }
.chart th { text-align: left; font-weight: 600; padding: .25rem .75rem .25rem 0; white-space: nowrap; }
.chart tbody th { width: 1%; }
.chart td { padding: .25rem 0; width: 100%; }
.track { display: flex; align-items: center; gap: .5rem; }
.bar { display: block; height: 1.15rem; border-radius: 3px; background: var(--c); min-width: 3px; }
.n { font-variant-numeric: tabular-nums; font-weight: 600; }
.totals { color: var(--muted); margin: .5rem 0 0; }
.legend { margin: 0; }
.legend dt { margin-top: .6rem; display: flex; flex-wrap: wrap; align-items: center; gap: .5rem; }
.legend dd { margin: .15rem 0 0; }
.thr { color: var(--muted); font-size: .9rem; }
.badge { display: inline-block; background: var(--c, #57534e); color: #fff; border-radius: 999px;
  padding: .05rem .6rem; font-size: .85rem; font-weight: 600; line-height: 1.5; white-space: nowrap;
  -webkit-print-color-adjust: exact; print-color-adjust: exact; }
.badge .p { font-variant-numeric: tabular-nums; font-weight: 400; margin-left: .25rem; }
.filters { position: sticky; top: 0; z-index: 1; background: #fff; border-bottom: 1px solid var(--line);
  padding: .5rem 0; margin-bottom: 1rem; }
.filters fieldset { border: 0; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: .35rem .5rem;
  align-items: center; }
.filters legend { float: left; font-weight: 600; margin-right: .25rem; padding: 0; }
.chip { display: inline-flex; align-items: center; gap: .35rem; border: 1px solid var(--line);
  border-radius: 999px; padding: .1rem .65rem .1rem .45rem; cursor: pointer; background: #fff; font-size: .9rem; }
.chip:has(input:checked) { background: var(--panel); border-color: #818b98; }
.chip input { margin: 0; accent-color: var(--c, #57534e); }
.swatch { display: inline-block; width: .8rem; height: .8rem; border-radius: 2px; background: var(--c, #d1d9e0);
  -webkit-print-color-adjust: exact; print-color-adjust: exact; }
.status { color: var(--muted); font-size: .9rem; margin: .3rem 0 0; }
.provision { border: 1px solid var(--line); border-left: 6px solid var(--line); border-radius: 0 6px 6px 0;
  padding: .75rem 1rem; margin: 0 0 1rem; scroll-margin-top: 6rem; }
.provision.labelled { border-left-color: var(--c); background: #fffdf8;
  -webkit-print-color-adjust: exact; print-color-adjust: exact; }
.provision:target { outline: 3px solid var(--link); outline-offset: 2px; }
.provision > header { display: flex; flex-wrap: wrap; align-items: baseline; gap: .3rem .75rem; }
.provision h3 { font-size: 1.05rem; line-height: 1.35; margin: 0; overflow-wrap: anywhere; }
.provision h3 a { color: inherit; text-decoration: none; }
.provision h3 a:hover, .provision h3 a:focus { text-decoration: underline; }
.pid { color: var(--muted); font: .8rem ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  overflow-wrap: anywhere; }
.badges { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: .3rem; }
.text { white-space: pre-wrap; overflow-wrap: anywhere; margin: .5rem 0; }
.none { color: var(--muted); font-style: italic; }
details { margin-top: .35rem; }
summary { cursor: pointer; color: var(--link); width: fit-content; }
summary .badge { font-size: .8rem; }
details > .body { border-left: 3px solid var(--line); padding: .25rem 0 .25rem .75rem; margin: .35rem 0 .5rem .25rem; }
details > .body > p { margin: .25rem 0; }
.spans { margin: .25rem 0; padding-left: 1.5rem; }
.spans li { margin: .1rem 0; overflow-wrap: anywhere; }
.drop { font-variant-numeric: tabular-nums; font-weight: 600; display: inline-block; min-width: 3.2rem; }
.nf { color: var(--muted); font-style: italic; }
mark { background: rgb(250 204 21 / var(--a, 1)); color: inherit; border-radius: 2px; padding: 0 .05em;
  -webkit-print-color-adjust: exact; print-color-adjust: exact; }
mark.up { background: rgb(147 197 253 / var(--a, 1)); }
mark.multi { box-shadow: inset 0 -2px 0 #854d0e; }
.scores { border-collapse: collapse; margin: .35rem 0; font-size: .9rem; }
.scores th, .scores td { border-bottom: 1px solid var(--line); padding: .2rem .75rem .2rem 0; text-align: left; }
.scores td.num { text-align: right; font-variant-numeric: tabular-nums; }
.scores .meter { display: inline-block; width: 5rem; height: .5rem; background: var(--panel);
  border: 1px solid var(--line); border-radius: 2px; vertical-align: middle; margin-left: .4rem; }
.scores .meter > span { display: block; height: 100%; background: var(--c); }
.empty { color: var(--muted); font-style: italic; }
footer { max-width: 62rem; margin: 2rem auto 1rem; padding: 0 1rem; color: var(--muted); font-size: .85rem; }
@media (max-width: 40rem) {
  body { font-size: 15px; }
  .provision { padding: .6rem .7rem; }
  .filters legend { float: none; width: 100%; }
}
@media print {
  body { font-size: 10.5pt; }
  .filters { display: none !important; }
  .provision[hidden] { display: block !important; }
  .provision { break-inside: auto; }
  .provision > header { break-after: avoid; }
  .chart, .scores, .spans li, mark { break-inside: avoid; }
  details::details-content { content-visibility: visible; display: block; }
  summary { color: inherit; list-style: none; }
  a { color: inherit; text-decoration: none; }
}
"#;

/// Shows only the provisions whose labels are ticked. The filter bar starts `hidden`, so a
/// reader without scripts sees every provision and no dead controls. Printing opens every
/// `<details>` (browsers without `::details-content` would otherwise print them closed).
const SCRIPT: &str = r#"
(function () {
  "use strict";
  var bar = document.getElementById("filters");
  if (!bar) { return; }
  var boxes = Array.prototype.slice.call(bar.querySelectorAll("input[data-label]"));
  var all = document.getElementById("filter-all");
  var status = document.getElementById("filter-status");
  var items = Array.prototype.slice.call(document.querySelectorAll("article.provision"));
  function apply() {
    var on = {};
    var ticked = 0;
    boxes.forEach(function (box) { if (box.checked) { on[box.getAttribute("data-label")] = true; ticked += 1; } });
    all.checked = ticked === boxes.length;
    all.indeterminate = ticked > 0 && ticked < boxes.length;
    var shown = 0;
    items.forEach(function (item) {
      var labels = (item.getAttribute("data-labels") || "").split(" ").filter(Boolean);
      if (labels.length === 0) { labels = ["none"]; }
      var visible = labels.some(function (label) { return on[label] === true; });
      item.hidden = !visible;
      if (visible) { shown += 1; }
    });
    status.textContent = "Showing " + shown + " of " + items.length + " provisions.";
  }
  boxes.forEach(function (box) { box.addEventListener("change", apply); });
  all.addEventListener("change", function () {
    boxes.forEach(function (box) { box.checked = all.checked; });
    apply();
  });
  var opened = [];
  window.addEventListener("beforeprint", function () {
    Array.prototype.forEach.call(document.querySelectorAll("details:not([open])"), function (d) {
      d.open = true;
      opened.push(d);
    });
  });
  window.addEventListener("afterprint", function () {
    opened.forEach(function (d) { d.open = false; });
    opened = [];
  });
  bar.hidden = false;
  apply();
})();
"#;

/// Renders the report as one self-contained HTML page that makes no network request.
pub fn render_html(report: &Report) -> String {
    let (per_label, unlabelled) = counts(report);
    let anchors = anchor_ids(&report.provisions);
    let mut out = String::new();
    render_head(&mut out, report);
    render_summary(&mut out, report, &per_label, unlabelled);
    render_legend(&mut out, report);
    render_draft(&mut out, report, &per_label, unlabelled, &anchors);
    out.push_str("<footer>Made by clause. Probabilities are the model's estimates, not legal advice.</footer>\n");
    w!(out, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    out
}

/// The document head (offline policy, styles, label colours) and the page header.
fn render_head(out: &mut String, report: &Report) {
    let label_count = report.labels.len();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    // The page is often opened from mail or a shared drive; the policy guarantees it stays
    // offline: nothing may be fetched, only the inline style and script run.
    out.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; \
         script-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'\">\n",
    );
    out.push_str("<meta name=\"generator\" content=\"clause report\">\n");
    w!(out, "<title>clause report: {}</title>\n<style>", esc(&report.title));
    out.push_str(CSS);
    // Label colours as custom properties, so badges, bars, borders and swatches share them.
    for l in 0..label_count {
        w!(out, ".l{l} {{ --c: {}; }}\n", colour(l));
    }
    out.push_str(".l-none { --c: #6e7781; }\n</style>\n</head>\n<body>\n");

    // Header.
    out.push_str("<header class=\"page-header\">\n");
    w!(out, "<h1>{}</h1>\n<dl class=\"meta\">\n", esc(&report.title));
    w!(out, "<dt>Model</dt><dd>{}</dd>\n", esc(&report.model));
    w!(out, "<dt>Generated</dt><dd>{}</dd>\n", esc(&report.generated));
    out.push_str("</dl>\n</header>\n<main>\n");
}

/// The summary chart: bars scaled to the largest count so small differences stay visible.
fn render_summary(out: &mut String, report: &Report, per_label: &[usize], unlabelled: usize) {
    out.push_str("<section aria-labelledby=\"summary\">\n<h2 id=\"summary\">Summary</h2>\n");
    out.push_str(
        "<table class=\"chart\">\n<caption class=\"totals\" style=\"caption-side: bottom; text-align: left\">",
    );
    let labelled = report.provisions.len() - unlabelled;
    w!(out, "{} provisions, {labelled} with at least one label.", report.provisions.len());
    out.push_str(
        "</caption>\n<thead><tr><th scope=\"col\">Label</th><th scope=\"col\">Provisions</th></tr></thead>\n<tbody>\n",
    );
    let largest = per_label.iter().copied().chain([unlabelled]).max().unwrap_or(0).max(1);
    let bar_row = |out: &mut String, class: &str, name: &str, key: &str, count: usize| {
        let width = count as f64 * 100.0 / largest as f64;
        w!(
            out,
            "<tr><th scope=\"row\">{name}</th><td><div class=\"track\"><span class=\"bar {class}\" \
             style=\"width: {width:.1}%\"></span><span class=\"n\" data-count-for=\"{key}\">{count}</span>\
             </div></td></tr>\n"
        );
    };
    for (l, label) in report.labels.iter().enumerate() {
        bar_row(out, &format!("l{l}"), &esc(&label.name), &l.to_string(), per_label[l]);
    }
    bar_row(out, "l-none", "<span class=\"none\">no label</span>", "none", unlabelled);
    out.push_str("</tbody>\n</table>\n</section>\n");
}

/// The labels, their thresholds and what they mean.
fn render_legend(out: &mut String, report: &Report) {
    out.push_str("<section aria-labelledby=\"labels\">\n<h2 id=\"labels\">Labels</h2>\n");
    if report.labels.is_empty() {
        out.push_str("<p class=\"empty\">The model has no labels.</p>\n");
    } else {
        out.push_str("<dl class=\"legend\">\n");
        for (l, label) in report.labels.iter().enumerate() {
            w!(
                out,
                "<dt><span class=\"badge l{l}\">{}</span> \
                 <span class=\"thr\">predicted at probability ≥ {:.2}</span></dt>\n<dd>{}</dd>\n",
                esc(&label.name),
                label.threshold,
                esc(&label.description)
            );
        }
        out.push_str("</dl>\n");
    }
    out.push_str("</section>\n");
}

/// The draft, every provision marked, with its filter bar.
fn render_draft(out: &mut String, report: &Report, per_label: &[usize], unlabelled: usize, anchors: &[String]) {
    out.push_str("<section aria-labelledby=\"draft\">\n<h2 id=\"draft\">Draft</h2>\n");
    out.push_str("<nav class=\"filters\" id=\"filters\" aria-label=\"Filter provisions\" hidden>\n<fieldset>\n");
    out.push_str("<legend>Show:</legend>\n");
    out.push_str("<label class=\"chip\"><input type=\"checkbox\" id=\"filter-all\" checked> all</label>\n");
    for (l, label) in report.labels.iter().enumerate() {
        w!(
            out,
            "<label class=\"chip l{l}\"><input type=\"checkbox\" data-label=\"{l}\" checked> \
             <span class=\"swatch\" aria-hidden=\"true\"></span>{} <span class=\"n\">({})</span></label>\n",
            esc(&label.name),
            per_label[l]
        );
    }
    w!(
        out,
        "<label class=\"chip l-none\"><input type=\"checkbox\" data-label=\"none\" checked> \
         <span class=\"swatch\" aria-hidden=\"true\"></span>no label <span class=\"n\">({unlabelled})</span></label>\n"
    );
    out.push_str("</fieldset>\n<p class=\"status\" id=\"filter-status\" aria-live=\"polite\"></p>\n</nav>\n");
    if report.provisions.is_empty() {
        out.push_str("<p class=\"empty\">The draft has no provisions.</p>\n");
    }
    for (provision, anchor) in report.provisions.iter().zip(anchors) {
        render_provision(out, report, provision, anchor);
    }
    out.push_str("</section>\n</main>\n");
}

/// One provision: heading, badges, full text, explanations and the score table.
fn render_provision(out: &mut String, report: &Report, provision: &ReportProvision, anchor: &str) {
    let labels = predicted(provision, report.labels.len());
    let score = |l: usize| provision.scores.get(l).copied();
    let data_labels = labels.iter().map(usize::to_string).collect::<Vec<_>>().join(" ");
    let class = match labels.first() {
        Some(top) => format!("provision labelled l{top}"),
        None => "provision".to_string(),
    };
    let heading = if provision.heading.trim().is_empty() { &provision.id } else { &provision.heading };
    w!(
        out,
        "<article class=\"{class}\" id=\"{anchor}\" data-labels=\"{data_labels}\" aria-labelledby=\"{anchor}-h\">\n"
    );
    w!(out, "<header>\n<h3 id=\"{anchor}-h\"><a href=\"#{anchor}\">{}</a></h3>\n", esc(heading));
    w!(out, "<span class=\"pid\">{}</span>\n", esc(&provision.id));
    if labels.is_empty() {
        out.push_str("<span class=\"none\">no label</span>\n");
    } else {
        out.push_str("<ul class=\"badges\" aria-label=\"Predicted labels\">\n");
        for &l in &labels {
            let label = &report.labels[l];
            w!(
                out,
                "<li class=\"badge l{l}\" title=\"probability {p}, threshold {t:.2}\">\
                 {}<span class=\"p\">{p}</span></li>\n",
                esc(&label.name),
                p = prob(score(l)),
                t = label.threshold
            );
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</header>\n");
    w!(out, "<div class=\"text\">{}</div>\n", esc(&provision.text));

    // Explanations: predicted labels first, in badge order, then any other label the caller
    // explained; one per label, since a second would only repeat the first.
    let mut order: Vec<usize> = labels.clone();
    for explanation in &provision.explanations {
        if explanation.label < report.labels.len() && !order.contains(&explanation.label) {
            order.push(explanation.label);
        }
    }
    for l in order {
        let Some(explanation) = provision.explanations.iter().find(|e| e.label == l) else { continue };
        render_explanation(out, report, provision, explanation, score(l));
    }

    // All scores.
    if !report.labels.is_empty() {
        out.push_str("<details>\n<summary>All scores</summary>\n<div class=\"body\">\n<table class=\"scores\">\n");
        out.push_str("<thead><tr><th scope=\"col\">Label</th><th scope=\"col\">Probability</th>");
        out.push_str("<th scope=\"col\">Threshold</th><th scope=\"col\">Predicted</th></tr></thead>\n<tbody>\n");
        for (l, label) in report.labels.iter().enumerate() {
            let s = score(l);
            let width = s.filter(|s| s.is_finite()).map_or(0.0, |s| s.clamp(0.0, 1.0) * 100.0);
            w!(
                out,
                "<tr class=\"l{l}\"><th scope=\"row\">{}</th><td class=\"num\">{}<span class=\"meter\" \
                 aria-hidden=\"true\"><span style=\"width: {width:.0}%\"></span></span></td>\
                 <td class=\"num\">{:.2}</td><td>{}</td></tr>\n",
                esc(&label.name),
                prob(s),
                label.threshold,
                if labels.contains(&l) { "yes" } else { "" }
            );
        }
        out.push_str("</tbody>\n</table>\n</div>\n</details>\n");
    }
    out.push_str("</article>\n");
}

/// A "Why?" disclosure: the spans sorted by drop, then the text with them marked.
fn render_explanation(
    out: &mut String,
    report: &Report,
    provision: &ReportProvision,
    explanation: &Explanation,
    score: Option<f32>,
) {
    let l = explanation.label;
    let label = &report.labels[l];
    let located = locate_spans(&provision.text, &explanation.spans);
    w!(
        out,
        "<details class=\"why\">\n\
         <summary>Why? <span class=\"badge l{l}\">{}<span class=\"p\">{}</span></span></summary>\n\
         <div class=\"body\">\n",
        esc(&label.name),
        prob(score)
    );
    if explanation.spans.is_empty() {
        out.push_str("<p class=\"empty\">No span changes this label's probability.</p>\n");
    } else {
        out.push_str("<p>Removing these passages lowers the probability most:</p>\n<ol class=\"spans\">\n");
        let mut order: Vec<usize> = (0..explanation.spans.len()).collect();
        order.sort_by(|&a, &b| explanation.spans[b].1.total_cmp(&explanation.spans[a].1));
        for i in order {
            let (span, drop) = &explanation.spans[i];
            let missing = if located[i].is_none() { " <span class=\"nf\">(not found in the text)</span>" } else { "" };
            w!(out, "<li><span class=\"drop\">{}</span> <q>{}</q>{missing}</li>\n", drop_text(*drop), esc(span));
        }
        out.push_str("</ol>\n");
        w!(out, "<div class=\"text\">{}</div>\n", highlight(&provision.text, &explanation.spans, &located));
    }
    out.push_str("</div>\n</details>\n");
}

/// Escapes characters that would start Markdown markup inside a line: emphasis, code, links,
/// inline HTML and table cells. Legal text rarely has them, so the escaping stays minimal.
fn md_inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// One line of a quoted text, escaped so it cannot turn into a heading, list, quote, table,
/// rule or code block. Leading indentation is dropped: four spaces would start a code block.
fn md_line(line: &str) -> String {
    let line = line.trim_start();
    let escaped = md_inline(line);
    let first = line.chars().next();
    let block_start = match first {
        Some('#' | '>' | '=' | '~') => true,
        Some('-' | '+') => true,
        Some(c) if c.is_ascii_digit() => {
            // "1. " or "1) " starts an ordered list; "1.2" does not, but escaping it is harmless.
            let rest = line.trim_start_matches(|c: char| c.is_ascii_digit());
            rest.starts_with(". ") || rest.starts_with(") ") || rest == "." || rest == ")"
        }
        _ => false,
    };
    if !block_start {
        return escaped;
    }
    if first.is_some_and(|c| c.is_ascii_digit()) {
        // Escape the list delimiter, not the digit.
        let digits = line.len() - line.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        return format!("{}\\{}", &escaped[..digits], &escaped[digits..]);
    }
    format!("\\{escaped}")
}

/// Renders the report as Markdown: a summary table, then each provision as a bold heading with
/// its labels, the text as a blockquote and the explanations as a nested list.
pub fn render_markdown(report: &Report) -> String {
    let (per_label, unlabelled) = counts(report);
    let mut out = String::new();
    w!(out, "# clause report: {}\n\n", md_inline(&report.title));
    w!(out, "- Model: {}\n- Generated: {}\n\n", md_inline(&report.model), md_inline(&report.generated));

    out.push_str("## Summary\n\n");
    w!(
        out,
        "{} provisions, {} with at least one label.\n\n",
        report.provisions.len(),
        report.provisions.len() - unlabelled
    );
    out.push_str("| Label | Description | Threshold | Provisions |\n|---|---|---:|---:|\n");
    for (l, label) in report.labels.iter().enumerate() {
        w!(
            out,
            "| {} | {} | {:.2} | {} |\n",
            md_inline(&label.name),
            md_inline(&label.description),
            label.threshold,
            per_label[l]
        );
    }
    w!(out, "| *no label* |  |  | {unlabelled} |\n\n");

    out.push_str("## Provisions\n");
    if report.provisions.is_empty() {
        out.push_str("\nThe draft has no provisions.\n");
    }
    for provision in &report.provisions {
        render_markdown_provision(&mut out, report, provision);
    }
    out
}

/// One provision in Markdown: a bold heading with its labels, the text as a
/// blockquote, then the explanations as a nested list.
fn render_markdown_provision(out: &mut String, report: &Report, provision: &ReportProvision) {
    let label_count = report.labels.len();
    let labels = predicted(provision, label_count);
    let score = |l: usize| provision.scores.get(l).copied();
    let heading = if provision.heading.trim().is_empty() { &provision.id } else { &provision.heading };
    let verdict = if labels.is_empty() {
        "no label".to_string()
    } else {
        labels
            .iter()
            .map(|&l| format!("{} ({})", md_inline(&report.labels[l].name), prob(score(l))))
            .collect::<Vec<_>>()
            .join(", ")
    };
    w!(out, "\n**{}** `{}` — {verdict}\n\n", md_inline(heading), provision.id.replace('`', "'"));
    let lines: Vec<&str> = provision.text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            out.push_str(">\n");
            continue;
        }
        // A trailing backslash is a hard line break, so the text keeps its line structure
        // instead of running into one paragraph.
        let next_is_text = lines.get(i + 1).is_some_and(|next| !next.trim().is_empty());
        w!(out, "> {}{}\n", md_line(line), if next_is_text { "\\" } else { "" });
    }
    if lines.is_empty() {
        out.push_str("> *(no text)*\n");
    }
    let mut order = labels.clone();
    for explanation in &provision.explanations {
        if explanation.label < label_count && !order.contains(&explanation.label) {
            order.push(explanation.label);
        }
    }
    let mut first = true;
    for l in order {
        let Some(explanation) = provision.explanations.iter().find(|e| e.label == l) else { continue };
        if first {
            out.push('\n');
            first = false;
        }
        w!(out, "- Why {} ({})?\n", md_inline(&report.labels[l].name), prob(score(l)));
        let located = locate_spans(&provision.text, &explanation.spans);
        let mut spans: Vec<usize> = (0..explanation.spans.len()).collect();
        spans.sort_by(|&a, &b| explanation.spans[b].1.total_cmp(&explanation.spans[a].1));
        for i in spans {
            let (span, drop) = &explanation.spans[i];
            let missing = if located[i].is_none() { " *(not found in the text)*" } else { "" };
            w!(out, "  - {} “{}”{missing}\n", drop_text(*drop), md_inline(span));
        }
    }
}

#[cfg(test)]
mod tests;
