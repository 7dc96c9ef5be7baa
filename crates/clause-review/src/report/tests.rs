//! Tests of the report pages.

use super::*;

fn label(name: &str, description: &str, threshold: f32) -> ReportLabel {
    ReportLabel { name: name.into(), description: description.into(), threshold }
}

fn spans(list: &[(&str, f32)]) -> Vec<(String, f32)> {
    list.iter().map(|(s, d)| (s.to_string(), *d)).collect()
}

/// A realistic report: a cybercrime-treaty excerpt with several labels, explanations,
/// an unlabelled preamble and one long provision.
fn sample() -> Report {
    let long = "1. Each State Party shall adopt such legislative and other measures as may be necessary to \
        empower its competent authorities to order or similarly obtain the expeditious preservation of \
        specified electronic data, including traffic data, content data and subscriber information, that \
        has been stored by means of an information and communications technology system, in particular \
        where there are grounds to believe that the electronic data is particularly vulnerable to loss or \
        modification.\n2. Where a State Party gives effect to paragraph 1 by means of an order to a person \
        to preserve specified stored electronic data in the person's possession or control, the State Party \
        shall adopt such legislative and other measures as may be necessary to oblige that person to \
        preserve and maintain the integrity of that electronic data for a period of time as long as \
        necessary, up to a maximum of 90 days, to enable the competent authorities to seek its disclosure.\n\
        3. Each State Party shall adopt such legislative and other measures as may be necessary to oblige \
        the custodian or other person who is to preserve the electronic data to keep confidential the \
        undertaking of such procedures for the period of time provided for by its domestic law.";
    Report {
        title: "un-cybercrime-convention-draft.txt".into(),
        model: "models/clause-deberta-v3-small".into(),
        generated: "2025-06-01 14:32 UTC".into(),
        labels: vec![
            label("surveillance", "Lets authorities collect, retain or intercept data about people.", 0.5),
            label("secrecy", "Requires that measures be kept confidential from those affected.", 0.45),
            label("vague-scope", "Uses open-ended terms such as \"other measures as may be necessary\".", 0.6),
            label("rights-safeguard", "Protects human rights, due process or proportionality.", 0.5),
        ],
        provisions: vec![
            ReportProvision {
                id: "preamble".into(),
                heading: "Preamble".into(),
                text: "The States Parties to this Convention,\nConcerned about the seriousness of problems \
                    posed by crime committed using information and communications technology systems,"
                    .into(),
                scores: vec![0.04, 0.01, 0.22, 0.12],
                labels: vec![],
                explanations: vec![],
            },
            ReportProvision {
                id: "art-27.1".into(),
                heading: "Art. 27.1 – Preservation of stored data".into(),
                text: long.into(),
                scores: vec![0.94, 0.71, 0.83, 0.08],
                labels: vec![0, 1, 2],
                explanations: vec![
                    Explanation {
                        label: 0,
                        spans: spans(&[
                            ("traffic data, content data and subscriber information", 0.41),
                            ("expeditious preservation", 0.27),
                            ("up to a maximum of 90 days", 0.12),
                        ]),
                    },
                    Explanation {
                        label: 1,
                        spans: spans(&[
                            ("to keep confidential the undertaking of such procedures", 0.52),
                            ("custodian or other person", 0.08),
                        ]),
                    },
                    Explanation {
                        label: 2,
                        spans: spans(&[
                            ("such legislative and other measures as may be necessary", 0.33),
                            ("other measures", 0.2),
                            ("as long as necessary", 0.18),
                            ("a phrase the model saw but the text lacks", 0.05),
                        ]),
                    },
                ],
            },
            ReportProvision {
                id: "art-28".into(),
                heading: "Art. 28 – Conditions and safeguards".into(),
                text: "Each State Party shall ensure that the establishment, implementation and application \
                    of the powers and procedures provided for in this chapter are subject to conditions and \
                    safeguards provided for under its domestic law, which shall provide for the protection \
                    of human rights and shall incorporate the principle of proportionality."
                    .into(),
                scores: vec![0.31, 0.02, 0.18, 0.91],
                labels: vec![3],
                explanations: vec![Explanation {
                    label: 3,
                    spans: spans(&[("protection of human rights", 0.38), ("principle of proportionality", 0.3)]),
                }],
            },
            ReportProvision {
                id: "art-29".into(),
                heading: "Art. 29 – Real-time collection of traffic data".into(),
                text: "Each State Party shall adopt such legislative and other measures as may be necessary \
                    to empower its competent authorities to collect or record, through the application of \
                    technical means, traffic data in real time associated with specified communications."
                    .into(),
                scores: vec![0.97, 0.38, 0.66, 0.05],
                labels: vec![0, 2],
                explanations: vec![Explanation {
                    label: 0,
                    spans: spans(&[("collect or record", 0.36), ("traffic data in real time", 0.44)]),
                }],
            },
        ],
    }
}

fn hostile() -> Report {
    let evil = "<script>alert(1)</script> & \"quoted\" 'single' </script>";
    Report {
        title: evil.into(),
        model: evil.into(),
        generated: evil.into(),
        labels: vec![label(evil, evil, 0.5)],
        provisions: vec![ReportProvision {
            id: evil.into(),
            heading: evil.into(),
            text: format!("Before {evil} after."),
            scores: vec![0.9],
            labels: vec![0],
            explanations: vec![Explanation { label: 0, spans: spans(&[(evil, 0.5)]) }],
        }],
    }
}

/// Text between tags, entities left as they are: what a reader sees, escaped.
fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[test]
fn html_shows_every_provision_and_badge() {
    let report = sample();
    let html = render_html(&report);
    for provision in &report.provisions {
        assert!(html.contains(&esc(&provision.id)), "id {}", provision.id);
        assert!(html.contains(&esc(&provision.heading)), "heading {}", provision.heading);
        assert!(html.contains(&format!("<div class=\"text\">{}</div>", esc(&provision.text))), "{}", provision.id);
        for &l in &provision.labels {
            let badge = format!("{}<span class=\"p\">{:.2}</span>", esc(&report.labels[l].name), provision.scores[l]);
            assert!(html.contains(&format!("class=\"badge l{l}\"")), "badge class {l}");
            assert!(html.contains(&badge), "badge {badge}");
        }
    }
    assert!(html.contains("surveillance<span class=\"p\">0.94</span>"));
    assert!(html.contains("id=\"p-art-27.1\""));
    assert!(html.contains("href=\"#p-art-27.1\""));
    // The top label colours the border: Art. 27.1's highest score is surveillance (l0).
    assert!(html.contains("<article class=\"provision labelled l0\" id=\"p-art-27.1\" data-labels=\"0 2 1\""));
    assert!(html.contains("<article class=\"provision\" id=\"p-preamble\" data-labels=\"\""));
    for label in &report.labels {
        assert!(html.contains(&esc(&label.description)));
    }
}

#[test]
fn html_makes_no_network_references() {
    for report in [sample(), hostile(), Report::default()] {
        let html = render_html(&report).to_lowercase();
        for banned in ["http://", "https://", "<link", "src=", "url(", "@import", "<img", "<iframe", "//cdn"] {
            assert!(!html.contains(banned), "found {banned}");
        }
    }
}

#[test]
fn hostile_text_is_escaped() {
    let html = render_html(&hostile());
    assert!(!html.contains("<script>alert"));
    assert!(!html.contains("alert(1)</script>"));
    // Only the page's own script opens and closes.
    assert_eq!(html.matches("<script").count(), 1);
    assert_eq!(html.matches("</script>").count(), 1);
    assert!(!html.contains("\"quoted\""));
    assert!(!html.contains("'single'"));
    assert!(!html.contains(" & "));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot; &#39;single&#39;"));
    // The anchor keeps only safe characters.
    assert!(html.contains("id=\"p-script-alert-1-script-quoted-single-script\""));
}

#[test]
fn summary_counts_match() {
    let mut report = sample();
    // A duplicate and an out-of-range index must not change the counts.
    report.provisions[3].labels.extend([0, 99]);
    let html = render_html(&report);
    for (key, count) in [("0", 2), ("1", 1), ("2", 2), ("3", 1), ("none", 1)] {
        assert!(html.contains(&format!("data-count-for=\"{key}\">{count}<")), "{key} should be {count}");
    }
    assert!(html.contains("4 provisions, 3 with at least one label."));
    let markdown = render_markdown(&report);
    assert!(
        markdown
            .contains("| surveillance | Lets authorities collect, retain or intercept data about people. | 0.50 | 2 |")
    );
    assert!(markdown.contains("| *no label* |  |  | 1 |"));
}

#[test]
fn explanation_spans_are_marked() {
    let html = render_html(&sample());
    assert!(html.contains("<summary>Why? <span class=\"badge l0\">surveillance<span class=\"p\">0.94</span>"));
    assert!(html.contains(">traffic data, content data and subscriber information</mark>"));
    assert!(html.contains("<span class=\"drop\">\u{2212}0.41</span>"));
    assert!(html.contains("(not found in the text)"));
}

#[test]
fn overlapping_and_missing_spans_keep_the_text() {
    let text = "collect and retain all data & more <b>";
    let explanation = spans(&[
        ("collect and retain", 0.4),
        ("retain all data", 0.3),
        ("missing", 0.2),
        ("", 0.1),
        ("more", -0.05),
        ("retain all data", 0.1),
        ("<b>", 0.2),
    ]);
    let located = locate_spans(text, &explanation);
    assert_eq!(located[2], None);
    assert_eq!(located[3], None);
    let marked = highlight(text, &explanation, &located);
    assert_eq!(strip_tags(&marked), esc(text));
    assert!(marked.contains(
        "<mark class=\"multi\" style=\"--a:1.00\" title=\"removing this changes the probability by −0.40\">retain</mark>"
    ));
    assert!(marked.contains("<mark class=\"up\""));
    assert!(marked.contains("&lt;b&gt;</mark>"));
    // Marks never nest: each one closes before the next opens.
    for piece in marked.split("<mark").skip(1) {
        assert_eq!(piece.matches("</mark>").count(), 1, "{marked}");
    }
    // Repeated spans take successive occurrences.
    assert_eq!(
        locate_spans("a b a", &spans(&[("a", 0.1), ("a", 0.2), ("a", 0.3)])),
        [Some((0, 1)), Some((4, 5)), Some((0, 1))]
    );
    // Multi-byte text slices on character boundaries.
    let text = "Données – « personnelles »";
    let located = locate_spans(text, &spans(&[("– « pers", 0.3)]));
    assert_eq!(strip_tags(&highlight(text, &spans(&[("– « pers", 0.3)]), &located)), esc(text));
}

#[test]
fn markdown_has_every_provision_and_label() {
    let report = sample();
    let markdown = render_markdown(&report);
    assert!(markdown.starts_with("# clause report: un-cybercrime-convention-draft.txt\n"));
    assert!(markdown.contains(
        "**Art. 27.1 – Preservation of stored data** `art-27.1` — surveillance (0.94), vague-scope (0.83), secrecy (0.71)\n"
    ));
    assert!(markdown.contains("**Preamble** `preamble` — no label\n"));
    assert!(markdown.contains("> The States Parties to this Convention,\\\n> Concerned"));
    assert!(
        markdown.contains(
            "- Why surveillance (0.94)?\n  - −0.41 “traffic data, content data and subscriber information”\n"
        )
    );
    assert!(markdown.contains("“a phrase the model saw but the text lacks” *(not found in the text)*"));
    for provision in &report.provisions {
        assert!(markdown.contains(&format!("**{}**", provision.heading)), "{}", provision.id);
        assert!(markdown.contains(&format!("`{}`", provision.id)));
    }
    // Numbered paragraphs must not become a Markdown list.
    assert!(markdown.contains("> 2\\. Where a State Party"));
}

#[test]
fn markdown_escapes_structure() {
    let mut report = hostile();
    report.labels[0].description = "a | b".into();
    report.provisions[0].text = "# not a heading\n| not | a table\n    not code\n- not a list\n\nafter".into();
    let markdown = render_markdown(&report);
    assert!(markdown.contains("| a \\| b |"));
    assert!(
        markdown
            .contains("> \\# not a heading\\\n> \\| not \\| a table\\\n> not code\\\n> \\- not a list\n>\n> after\n")
    );
    assert!(markdown.contains("**\\<script>alert(1)\\</script> & \"quoted\" 'single' \\</script>**"));
}

#[test]
fn empty_report_renders() {
    let empty = Report::default();
    let html = render_html(&empty);
    assert!(html.contains("The draft has no provisions."));
    assert!(html.contains("data-count-for=\"none\">0<"));
    assert!(html.ends_with("</html>\n"));
    let markdown = render_markdown(&empty);
    assert!(markdown.contains("The draft has no provisions."));
    // Labels but no scores, and explanations of unknown labels, must not panic either.
    let mut sparse = sample();
    for provision in &mut sparse.provisions {
        provision.scores.clear();
        provision.explanations.push(Explanation { label: 42, spans: spans(&[("x", 0.1)]) });
    }
    assert!(render_html(&sparse).contains("surveillance<span class=\"p\">–</span>"));
    assert!(render_markdown(&sparse).contains("surveillance (–)"));
}

#[test]
fn anchors_are_unique() {
    let provision = |id: &str| ReportProvision { id: id.into(), ..ReportProvision::default() };
    let anchors = anchor_ids(&[provision("Art 1"), provision("Art-1"), provision(""), provision("§ 2 (a)")]);
    assert_eq!(anchors, ["p-Art-1", "p-Art-1-2", "p-3", "p-2-a"]);
}
