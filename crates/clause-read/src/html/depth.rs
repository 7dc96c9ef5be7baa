//! How deeply a page's elements nest, estimated from its tags before it is
//! parsed: html5ever checks the stack of open elements at every tag, so a
//! page nested tens of thousands of elements deep takes minutes to parse
//! (20,000 `div`s: 2 s; 50,000: 12 s), which a server must refuse first.

/// Elements the scan does not count: void elements, which have no end tag,
/// and those whose end tag a page may leave out (the parser closes them
/// itself, so a page of unclosed `<p>`s is not deep).
const NOT_COUNTED: [&str; 36] = [
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr", "param",
    "keygen", "basefont", "bgsound", "frame", "p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th", "thead",
    "tbody", "tfoot", "colgroup", "caption", "rb", "rt", "rp", "rtc",
];

/// Elements whose content is text up to their end tag, not markup.
const RAW_TEXT: [&str; 8] = ["script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes"];

/// The deepest nesting of counted elements as the tags open and close them
/// (comments, declarations and raw-text bodies skipped). An estimate: it
/// does not apply the parser's rules for misnested tags.
pub(crate) fn nesting_depth(source: &str) -> usize {
    let (mut depth, mut deepest, mut at) = (0usize, 0usize, 0usize);
    while let Some(found) = source.get(at..).and_then(|rest| rest.find('<')) {
        let open = at + found;
        let rest = &source[open + 1..];
        if let Some(comment) = rest.strip_prefix("!--") {
            at = comment.find("-->").map_or(source.len(), |end| open + 4 + end + 3);
            continue;
        }
        let closing = rest.starts_with('/');
        let name_start = open + 1 + usize::from(closing);
        let name_len = source[name_start..].bytes().take_while(u8::is_ascii_alphanumeric).count();
        // No `>` after this: no tag closes before the end, and scanning on
        // for each `<` would be quadratic.
        let Some(tag_end) = source[name_start..].find('>').map(|end| name_start + end) else {
            break;
        };
        if name_len == 0 {
            // `<!DOCTYPE>`, `<?xml ?>`, or a bare `<` in text.
            at = if rest.starts_with(['!', '?']) { tag_end } else { open + 1 };
            continue;
        }
        let name = source[name_start..name_start + name_len].to_ascii_lowercase();
        let counted = !NOT_COUNTED.contains(&name.as_str());
        if closing {
            if counted {
                depth = depth.saturating_sub(1);
            }
        } else if RAW_TEXT.contains(&name.as_str()) {
            at = end_tag(source, tag_end, &name).unwrap_or(source.len());
            continue;
        } else if counted && !source[..tag_end].ends_with('/') {
            depth += 1;
            deepest = deepest.max(depth);
        }
        at = tag_end;
    }
    deepest
}

/// Where the end tag `</name` (any case) starts, from byte `from` on.
fn end_tag(source: &str, from: usize, name: &str) -> Option<usize> {
    let mut at = from;
    while let Some(found) = source.get(at..)?.find("</") {
        let start = at + found;
        let after = source.as_bytes().get(start + 2..start + 2 + name.len())?;
        if after.eq_ignore_ascii_case(name.as_bytes()) {
            return Some(start);
        }
        at = start + 2;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::nesting_depth;

    #[test]
    fn counts_elements_that_must_be_closed() {
        assert_eq!(nesting_depth("<div><section><span>a</span></section></div>"), 3);
        assert_eq!(nesting_depth(&"<p>unclosed paragraph ".repeat(500)), 0);
        assert_eq!(nesting_depth("<ul><li>a<li>b</ul><br><img src=x/><div/>"), 1);
        assert_eq!(nesting_depth("<!-- <div><div> --><script>if (a<b) { '<div>' }</script><div>x</div>"), 1);
        assert_eq!(nesting_depth("<!DOCTYPE html><DIV><Div>a < b</div></DIV>"), 2);
        assert_eq!(nesting_depth(&"<div>".repeat(3000)), 3000);
        assert_eq!(nesting_depth("<SCRIPT>'<div>'</ScRiPt><div>"), 1);
        for odd in ["<", "<div", "<!--", "<script>", "</", "<a/", "é<é>", "<div x='>'>", "<script></scr"] {
            nesting_depth(odd);
        }
        // Hostile input the scan must stay linear on (quadratic, each of
        // these would take minutes): unterminated tags, unclosed scripts.
        assert_eq!(nesting_depth(&"<a".repeat(200_000)), 0);
        assert_eq!(nesting_depth(&"<script>x".repeat(50_000)), 0);
        assert_eq!(nesting_depth(&"<!--".repeat(100_000)), 0);
    }
}
