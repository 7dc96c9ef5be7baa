//! The layout heuristics on made-up glyphs: each character half its size
//! wide, words a space apart, lines 14 points apart (12-point type).

use super::hyphens::{Compounds, join};
use super::running::{is_document_symbol, is_page_furniture, is_page_number};
use super::*;

const SIZE: f64 = 12.0;
const PITCH: f64 = 14.0;

/// The glyphs of `text` from (x, y), one a character, in `size`.
fn glyphs(text: &str, x: f64, y: f64, size: f64, bold: bool) -> Vec<Glyph> {
    let width = size / 2.0;
    text.chars()
        .enumerate()
        .map(|(i, c)| Glyph { text: c.to_string(), x: x + i as f64 * width, y, width, size, bold })
        .collect()
}

/// A page of body lines, each at x 72, from y 700 down a line pitch apart;
/// an empty string leaves a line empty (a paragraph gap).
fn page(number: usize, lines: &[&str]) -> Page {
    let mut glyphs_of_page = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        glyphs_of_page.extend(glyphs(line, 72.0, 700.0 - i as f64 * PITCH, SIZE, false));
    }
    Page { number, glyphs: glyphs_of_page }
}

fn text_of(pages: &[Page]) -> String {
    document(pages).text
}

#[test]
fn lines_join_into_paragraphs_and_gaps_break_them() {
    let text = text_of(&[page(
        1,
        &[
            "The first paragraph runs on over the",
            "two lines of the page and ends.",
            "",
            "The second paragraph starts right after",
            "a gap.",
        ],
    )]);
    assert_eq!(
        text,
        "The first paragraph runs on over the two lines of the page and ends.\n\n\
         The second paragraph starts right after a gap.\n"
    );
}

#[test]
fn markers_and_headings_start_blocks() {
    let text = text_of(&[page(
        1,
        &[
            "Article 5",
            "Purpose",
            "1. Each Party shall adopt such measures;",
            "2. Each Party may, in accordance with",
            "paragraph 1, reserve the right to:",
            "(a) refuse; and",
            "(b) defer.",
        ],
    )]);
    assert_eq!(
        text,
        "Article 5\n\nPurpose\n\n1. Each Party shall adopt such measures;\n\n\
         2. Each Party may, in accordance with paragraph 1, reserve the right to:\n\n(a) refuse; and\n\n(b) defer.\n"
    );
    // A number that only starts a line inside a sentence stays in it.
    let text = text_of(&[page(1, &["as referred to in paragraph", "2. of the Convention and the", "rest."])]);
    assert_eq!(text, "as referred to in paragraph 2. of the Convention and the rest.\n");
}

#[test]
fn bold_and_larger_blocks_are_headings() {
    let mut glyphs_of_page = glyphs("Draft Convention", 72.0, 740.0, 18.0, true);
    glyphs_of_page.extend(glyphs("Chapter IV – Procedure", 72.0, 710.0, SIZE, true));
    glyphs_of_page.extend(glyphs("Each State Party shall act.", 72.0, 690.0, SIZE, false));
    glyphs_of_page.extend(glyphs("Each State Party shall also", 72.0, 670.0, SIZE, false));
    glyphs_of_page.extend(glyphs("cooperate with the other Parties", 72.0, 656.0, SIZE, false));
    glyphs_of_page.extend(glyphs("fully.", 72.0, 642.0, SIZE, false));
    let text = text_of(&[Page { number: 1, glyphs: glyphs_of_page }]);
    assert_eq!(
        text,
        "# Draft Convention\n\n## Chapter IV – Procedure\n\nEach State Party shall act.\n\n\
         Each State Party shall also cooperate with the other Parties fully.\n"
    );
}

#[test]
fn a_line_that_stopped_short_of_the_margin_ended_its_paragraph() {
    // The second line could have taken "The" from the third: it ended a
    // paragraph, although nothing else (spacing, punctuation) says so.
    let text = text_of(&[page(
        1,
        &["A heading without a full stop that runs long", "Short title", "The body text starts here and runs on"],
    )]);
    assert_eq!(
        text,
        "A heading without a full stop that runs long Short title\n\nThe body text starts here and runs on\n"
    );
}

#[test]
fn words_hyphenated_at_line_ends_are_rejoined() {
    let text = text_of(&[page(
        1,
        &[
            "Each Party shall adopt measures on surveil-",
            "lance and on international co-operation, in",
            "the spirit of co-",
            "operation, with non-",
            "State actors and with partners.",
        ],
    )]);
    assert_eq!(
        text,
        "Each Party shall adopt measures on surveillance and on international co-operation, in the spirit of \
         co-operation, with non-State actors and with partners.\n"
    );
}

#[test]
fn hyphen_rule() {
    let mut compounds = Compounds::default();
    compounds.learn("the data-protection law and tele-");
    compounds.learn("of cooperation and of international law");
    let joined = |before: &str, after: &str| {
        let mut text = before.to_string();
        join(&mut text, after, &compounds);
        text
    };
    assert_eq!(joined("the surveil-", "lance of"), "the surveillance of");
    assert_eq!(joined("the data-", "protection law"), "the data-protection law");
    assert_eq!(joined("Franco-", "German"), "Franco-German");
    assert_eq!(joined("in 2001-", "2005"), "in 2001-2005");
    assert_eq!(joined("a tele-", "phone"), "a telephone", "a line-end fragment is no compound");
    assert_eq!(joined("in co-", "operation with"), "in cooperation with", "written so elsewhere");
    assert_eq!(joined("non-", "governmental"), "non-governmental");
    assert_eq!(joined("self-", "defence"), "self-defence");
    assert_eq!(joined("inter-", "national"), "international");
    assert_eq!(joined("the re-", "port"), "the report", "nothing says otherwise");
    assert_eq!(joined("text –", "more"), "text – more");
    assert_eq!(joined("text -", "more"), "text - more");
    assert_eq!(joined("soft\u{ad}", "ware"), "software");
    assert_eq!(joined("", "first"), "first");
    assert_eq!(joined("one", "two"), "one two");
}

#[test]
fn running_headers_footers_and_page_numbers_go() {
    let ends = ["on.", "onwards.", "further."];
    let pages: Vec<Page> = (1..=3)
        .map(|n| {
            let mut glyphs_of_page = glyphs("A/AC.291/L.15", 72.0, 800.0, SIZE, false);
            glyphs_of_page.extend(glyphs("Draft convention (revised)", 72.0, 780.0, SIZE, false));
            glyphs_of_page.extend(glyphs(&format!("Body text of page {n} that runs"), 72.0, 700.0, SIZE, false));
            glyphs_of_page.extend(glyphs(ends.get(n - 1).copied().unwrap_or_default(), 72.0, 686.0, SIZE, false));
            glyphs_of_page.extend(glyphs(&format!("Page {n} of 3"), 250.0, 60.0, SIZE, false));
            Page { number: n, glyphs: glyphs_of_page }
        })
        .collect();
    let document = document(&pages);
    assert_eq!(
        document.text,
        "Body text of page 1 that runs on.\n\nBody text of page 2 that runs onwards.\n\n\
         Body text of page 3 that runs further.\n"
    );
    assert_eq!(document.locations.iter().map(|(_, l)| l.to_string()).collect::<Vec<_>>(), ["p. 1", "p. 2", "p. 3"]);
}

#[test]
fn a_page_number_alone_goes_even_on_one_page() {
    let mut glyphs_of_page = glyphs("Article 1", 72.0, 700.0, SIZE, false);
    glyphs_of_page.extend(glyphs("The text.", 72.0, 686.0, SIZE, false));
    glyphs_of_page.extend(glyphs("- 1 -", 290.0, 60.0, SIZE, false));
    assert_eq!(text_of(&[Page { number: 1, glyphs: glyphs_of_page }]), "Article 1\n\nThe text.\n");
}

#[test]
fn page_furniture_patterns() {
    for text in ["12", "- 12 -", "– 12 –", "12/41", "Page 12 of 41", "page 3", "p. 12", "[4]", "iv"] {
        assert!(is_page_number(text), "{text}");
    }
    for text in ["12.", "1. Text", "Page twelve", "12 apples", "12/41/2", ""] {
        assert!(!is_page_number(text), "{text}");
    }
    for text in ["A/AC.291/L.15", "E/CN.4/2004/L.10", "CCPR/C/GC/34", "S/RES/2334 (2016)", "A/HRC/55/L.1/Rev.1"] {
        assert!(is_document_symbol(text), "{text}");
    }
    for text in ["and/or", "12/05/2024", "A/B", "Article 5/6/7 of"] {
        assert!(!is_document_symbol(text), "{text}");
    }
    assert!(is_page_furniture("A/AC.291/L.15 Page 3"));
    assert!(is_page_furniture("3 A/AC.291/L.15"));
    assert!(!is_page_furniture("Article 3"));
}

#[test]
fn footnote_marks_and_bodies_are_left_out() {
    let mut glyphs_of_page = glyphs("Each Party shall act in good faith and", 72.0, 700.0, SIZE, false);
    glyphs_of_page.extend(glyphs("shall report on what it did under this", 72.0, 686.0, SIZE, false));
    glyphs_of_page.extend(glyphs("article.", 72.0, 672.0, SIZE, false));
    // A superscript "1": smaller, raised, right after the full stop.
    glyphs_of_page.extend(glyphs("1", 72.0 + 8.0 * 6.0, 676.0, 7.0, false));
    // The notes: a raised number, then the text in 10-point type.
    glyphs_of_page.extend(glyphs("1", 72.0, 103.0, 6.0, false));
    glyphs_of_page.extend(glyphs("One delegation objected to this", 76.0, 100.0, 10.0, false));
    glyphs_of_page.extend(glyphs("paragraph.", 76.0, 88.0, 10.0, false));
    glyphs_of_page.extend(glyphs("2 Another note.", 72.0, 76.0, 10.0, false));
    let text = text_of(&[Page { number: 1, glyphs: glyphs_of_page }]);
    assert_eq!(text, "Each Party shall act in good faith and shall report on what it did under this article.\n");
}

#[test]
fn small_type_without_a_number_stays() {
    let mut glyphs_of_page = glyphs("Each Party shall act as this article says.", 72.0, 700.0, SIZE, false);
    glyphs_of_page.extend(glyphs("Note: a remark in small type.", 72.0, 100.0, 10.0, false));
    let text = text_of(&[Page { number: 1, glyphs: glyphs_of_page }]);
    assert_eq!(text, "Each Party shall act as this article says.\n\nNote: a remark in small type.\n");
}

#[test]
fn two_columns_are_read_one_after_the_other() {
    let mut glyphs_of_page = glyphs("A title across the whole width of the page", 72.0, 760.0, SIZE, true);
    let left = ["The left column", "starts here and", "goes on down to", "its foot, where", "it ends."];
    let right = ["The right column", "follows it and", "ends the page", "with its own", "last line."];
    for (i, (l, r)) in left.iter().zip(right).enumerate() {
        // The right column's baselines sit a little lower than the left's.
        glyphs_of_page.extend(glyphs(l, 72.0, 720.0 - i as f64 * PITCH, SIZE, false));
        glyphs_of_page.extend(glyphs(r, 320.0, 716.0 - i as f64 * PITCH, SIZE, false));
    }
    let text = text_of(&[Page { number: 1, glyphs: glyphs_of_page }]);
    assert_eq!(
        text,
        "# A title across the whole width of the page\n\n\
         The left column starts here and goes on down to its foot, where it ends.\n\n\
         The right column follows it and ends the page with its own last line.\n"
    );
}

#[test]
fn one_column_with_an_indented_list_is_not_split() {
    let text = text_of(&[page(
        1,
        &[
            "1. Each Party shall take the measures",
            "   needed to give effect to this article",
            "   and shall report on them.",
            "2. Each Party may reserve the right not",
            "   to apply paragraph 1 in part.",
            "3. Reservations may be withdrawn at any",
            "   time.",
        ],
    )]);
    assert_eq!(
        text,
        "1. Each Party shall take the measures needed to give effect to this article and shall report on them.\n\n\
         2. Each Party may reserve the right not to apply paragraph 1 in part.\n\n\
         3. Reservations may be withdrawn at any time.\n"
    );
}

#[test]
fn overprinted_glyphs_count_once_and_gaps_are_spaces() {
    let mut glyphs_of_page = glyphs("Bold", 72.0, 700.0, SIZE, false);
    glyphs_of_page.extend(glyphs("Bold", 72.3, 700.0, SIZE, false));
    // No space glyph, only a gap: a word space all the same.
    glyphs_of_page.extend(glyphs("text", 72.0 + 4.0 * 6.0 + 4.0, 700.0, SIZE, false));
    assert_eq!(text_of(&[Page { number: 1, glyphs: glyphs_of_page }]), "Bold text\n");
}

#[test]
fn empty_pages_give_no_blocks() {
    assert_eq!(text_of(&[Page::default(), page(2, &[])]), "");
}
