//! What a line starts with, as `clause_segment` reads it: the markers of
//! provisions (`Article 5`, `Chapter IV`, `Section 1`, `1.`, `(1)`, `1)`,
//! `(a)`, `a)`, `(iv)`, `IV.`), which begin a new block, and whole-line
//! article and division headings, which also end one. The rules follow the
//! segmenter's (`classify.rs`), so that a block starts wherever the
//! segmenter will look for a provision.

/// The words that open an article heading.
const ARTICLE: [&str; 5] = ["Article", "ARTICLE", "Art.", "ART.", "article"];
/// The words that open a division heading above articles.
const DIVISION: [&str; 12] = [
    "Part",
    "PART",
    "Chapter",
    "CHAPTER",
    "Section",
    "SECTION",
    "Title",
    "TITLE",
    "Subsection",
    "SUBSECTION",
    "Sub-section",
    "SUB-SECTION",
];

/// A line that starts with a provision marker.
pub(crate) fn starts_provision(text: &str) -> bool {
    heading_rest(text).is_some() || paragraph_marker(text) || sub_paragraph_marker(text) || roman_section(text)
}

/// A line that is an article or division heading on its own: the word and
/// number alone, or followed by a title (after a dash, full stop or colon,
/// or short and capitalised, not a sentence).
pub(crate) fn is_heading(text: &str) -> bool {
    let Some(rest) = heading_rest(text) else { return false };
    let separated = rest.starts_with(['-', '–', '—', '.', ':']);
    let title = rest.trim_start_matches(['-', '–', '—', '.', ':']).trim();
    rest.is_empty() || (title_like(title) && (separated || title.starts_with(char::is_uppercase)))
}

/// After `Article 5` or `Chapter IV` (and a Latin suffix: `12 bis`), the
/// rest of the line, trimmed; `None` when the line starts with neither.
fn heading_rest(text: &str) -> Option<&str> {
    let text = text.trim();
    let (rest, article) = match ARTICLE.iter().find_map(|word| text.strip_prefix(word)) {
        Some(rest) => (rest, true),
        None => (DIVISION.iter().find_map(|word| text.strip_prefix(word))?, false),
    };
    // "Articles" or "Partners" are words, not headings.
    let spaced = rest.starts_with(char::is_whitespace);
    if !(spaced || article && rest.starts_with(|c: char| c.is_ascii_digit())) {
        return None;
    }
    let rest = rest.trim_start();
    let end = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
    let number = rest.get(..end)?;
    let digits = number.chars().take_while(char::is_ascii_digit).count();
    let arabic = digits > 0 && number.chars().skip(digits).all(|c| c.is_ascii_alphabetic());
    let roman = !number.is_empty() && number.chars().all(|c| "IVXLC".contains(c));
    let letter = !article && number.len() == 1 && number.chars().all(|c| c.is_ascii_uppercase());
    if !(arabic || roman || letter) {
        return None;
    }
    let mut after = rest.get(end..)?.trim_start();
    for suffix in ["bis", "ter", "quater", "quinquies", "sexies"] {
        if let Some(more) = after.strip_prefix(suffix)
            && (more.is_empty() || more.starts_with([' ', '.', '-', '–', '—', ':']))
        {
            after = more.trim_start();
        }
    }
    Some(after)
}

/// A title rather than a sentence: short, without a closing full stop.
fn title_like(text: &str) -> bool {
    let words = text.split_whitespace().count();
    words > 0 && words <= 14 && !text.ends_with(['.', ';', ':', ','])
}

/// `1.`, `1)` or `(1)` (up to three digits), then a space or the end.
fn paragraph_marker(text: &str) -> bool {
    let text = text.trim_start();
    let body = text.strip_prefix('(').unwrap_or(text);
    let digits = body.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 || digits > 3 {
        return false;
    }
    let rest = body.get(digits..).unwrap_or_default();
    let closed = if body.len() < text.len() { rest.strip_prefix(')') } else { rest.strip_prefix(['.', ')']) };
    closed.is_some_and(|after| after.is_empty() || after.starts_with(char::is_whitespace))
}

/// `(a)`, `a)`, `a.`, `(iv)`, `iv)`, then a space or the end.
fn sub_paragraph_marker(text: &str) -> bool {
    let text = text.trim_start();
    let open = text.starts_with('(');
    let body = text.strip_prefix('(').unwrap_or(text);
    let letters = body.chars().take_while(char::is_ascii_lowercase).count();
    let roman = body.chars().take(letters).all(|c| "ivxl".contains(c));
    if letters == 0 || letters > 5 || (letters > 1 && !roman) {
        return false;
    }
    let rest = body.get(letters..).unwrap_or_default();
    let closed = if open { rest.strip_prefix(')') } else { rest.strip_prefix([')', '.']) };
    closed.is_some_and(|after| after.is_empty() || after.starts_with(char::is_whitespace))
}

/// `IV.` then a capital: a Roman-numbered section.
fn roman_section(text: &str) -> bool {
    let text = text.trim_start();
    let numeral = text.chars().take_while(|c| matches!(c, 'I' | 'V' | 'X')).count();
    numeral > 0
        && text
            .get(numeral..)
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(|after| after.trim_start().starts_with(char::is_uppercase))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provision_markers() {
        for text in [
            "Article 5",
            "ARTICLE 12 bis – Title",
            "Art. 3",
            "Chapter IV – Procedural measures",
            "SECTION 2",
            "Part A",
            "1. Each Party shall",
            "12) text",
            "(3) text",
            "(a) any person",
            "b) reserve",
            "(iv) the",
            "II. Sharing of data",
        ] {
            assert!(starts_provision(text), "{text}");
        }
        for text in [
            "Articles 5 and 6",
            "Partners shall",
            "1.5 million",
            "2001 was",
            "(ab) x",
            "a.m. on",
            "Chapter of the",
            "I.",
        ] {
            assert!(!starts_provision(text), "{text}");
        }
    }

    #[test]
    fn whole_line_headings() {
        for text in
            ["Article 5", "Article 23 – Use of terms", "CHAPTER I", "Section 1 - General provisions", "Article 4 Scope"]
        {
            assert!(is_heading(text), "{text}");
        }
        for text in [
            "Article 5 of this Convention shall apply.",
            "Article 5 shall apply",
            "Chapter III of this Convention;",
            "1. Text",
        ] {
            assert!(!is_heading(text), "{text}");
        }
    }
}
