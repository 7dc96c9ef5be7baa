//! HTML pages: what is text, blocks, lists, EUR-Lex markup, encodings.

use crate::{Error, Format, Location, read_bytes};

fn read(html: &[u8]) -> crate::Document {
    read_bytes(html, Format::Html, "page.html").unwrap_or_else(|e| panic!("{e}"))
}

fn lines(html: &str) -> Vec<String> {
    read(html.as_bytes()).text.lines().filter(|l| !l.is_empty()).map(String::from).collect()
}

#[test]
fn furniture_and_hidden_content_are_left_out() {
    let page = r#"<html><head><title>T</title><style>p{}</style><script>var x = "<p>no</p>";</script></head><body>
        <header><a href="/">Site</a></header><nav>Menu</nav>
        <main><article><header><h1>Terms</h1></header><p>Visible.</p>
        <aside>Aside</aside><form><label>Email</label><button>Go</button></form>
        <p hidden>Hidden.</p><div aria-hidden="true">Aria.</div><p aria-hidden="false">Shown.</p>
        <p style="DISPLAY: none">None.</p><span style="visibility:hidden">Invisible.</span>
        <noscript>Enable scripts.</noscript><template><p>Template.</p></template>
        <svg><text>Icon</text></svg><dialog>Closed dialog.</dialog>
        <footer>Article footer.</footer></article></main>
        <footer>Site footer</footer></body></html>"#;
    assert_eq!(lines(page), ["# Terms", "Visible.", "Shown.", "Article footer."]);
}

#[test]
fn blocks_headings_and_whitespace() {
    let page = "<body><h2>Article 5<br>Title</h2><div>One <b>bold</b>\n  text<div>Inner</div>tail</div>\
        <p>Line<br>break</p><dl><dt>Term</dt><dd>Meaning</dd></dl><blockquote>Quote &amp; more&nbsp;here &#8212; &sect;</blockquote>\
        <table><tr><th>Head</th><td>Cell</td></tr></table></body>";
    assert_eq!(
        lines(page),
        [
            "## Article 5 Title",
            "One bold text",
            "Inner",
            "tail",
            "Line",
            "break",
            "Term",
            "Meaning",
            "Quote & more here — §",
            "Head",
            "Cell"
        ]
    );
}

#[test]
fn ordered_lists_show_their_numbers() {
    let page = r#"<ol><li>One<li><p>Two</p><ol type="a"><li>sub a<li value="4">sub d</ol></li></ol>
        <ol start="3" type="I"><li>three<li>four</ol><ol reversed><li>x<li>y<li>z</ol>
        <ul><li>bullet</ul><ol type="A" start="27"><li>big</ol><ol type="i" start="9"><li>roman</ol><ol><li></li><li>after empty</ol>"#;
    assert_eq!(
        lines(page),
        [
            "1. One",
            "2. Two",
            "a. sub a",
            "d. sub d",
            "III. three",
            "IV. four",
            "3. x",
            "2. y",
            "1. z",
            "bullet",
            "AA. big",
            "ix. roman",
            "1.",
            "2. after empty"
        ]
    );
}

#[test]
fn numbers_laid_out_apart_join_their_text() {
    let page = r#"<p>2. A request shall:</p>
        <table><tr><td><p>(a)</p></td><td><p>state the offence;</p></td></tr></table>
        <div class="grid-list"><div><span>(b)</span></div><div><p>be limited.</p></div></div>
        <div class="norm"><span class="no-parag">3.&nbsp;&nbsp;</span><div class="inline-element">Third.</div></div>
        <p>(c)</p><h3>Heading</h3><p>—</p>"#;
    assert_eq!(
        lines(page),
        ["2. A request shall:", "(a) state the offence;", "(b) be limited.", "3. Third.", "(c)", "### Heading", "—"]
    );
}

#[test]
fn eur_lex_titles_join_their_numbers() {
    let page = r#"<p class="doc-ti">REGULATION 1</p><p class="doc-ti">on things</p>
        <p class="normal">Whereas:</p>
        <p class="oj-ti-section-1">CHAPTER I</p><p class="oj-ti-section-2"><span class="oj-bold">General</span></p>
        <p class="ti-art">Article 1</p><p class="sti-art">Subject matter</p><p class="normal">Text one.</p>
        <p class="title-article-norm">Article 2</p><div class="eli-title"><p class="stitle-article-norm">Scope</p></div>
        <p class="ti-art">Article 3</p><p class="normal">No title.</p>
        <p class="sti-art">Stray title</p>"#;
    assert_eq!(
        lines(page),
        [
            "# REGULATION 1 on things",
            "Whereas:",
            "## CHAPTER I – General",
            "#### Article 1 – Subject matter",
            "Text one.",
            "#### Article 2 – Scope",
            "#### Article 3",
            "No title.",
            "Stray title"
        ]
    );
}

#[test]
fn footnotes_are_left_out() {
    let page = r##"<p>Text<a href="#fn1" class="footnote-ref" role="doc-noteref"><sup>1</sup></a> and<a id="ntc1-X" href="#ntr1-X">(<span class="super">1</span>)</a> more.</p>
        <section class="footnotes footnotes-end-of-document" role="doc-endnotes"><hr><ol><li id="fn1"><p>Note.</p></li></ol></section>
        <p class="note">(1) EUR-Lex note.</p>"##;
    assert_eq!(lines(page), ["Text and more."]);
}

#[test]
fn element_paths_locate_blocks() {
    let page =
        "<body><main><article><p>a</p></article><article><p>b</p><p>c</p><p>d <b>e</b></p></article></main></body>";
    let document = read(page.as_bytes());
    let paths: Vec<String> = document.locations.iter().map(|(_, l)| l.to_string()).collect();
    assert_eq!(
        paths,
        ["body/main/article/p", "body/main/article[2]/p", "body/main/article[2]/p[2]", "body/main/article[2]/p[3]"]
    );
    let at = document.text.find("d e").unwrap_or_default();
    assert_eq!(document.location_at(at + 2), Some(&Location::Element("body/main/article[2]/p[3]".into())));
}

#[test]
fn malformed_markup_is_read_as_browsers_do() {
    let page = "<p hidden>hidden, never closed<p>1. Visible.<aside>aside<p>also aside</aside><p>2. <b>bold <i>both</b> italic</i><table><tr><td>cell</table><div><p>in<div>div</div>after</div>";
    assert_eq!(lines(page), ["1. Visible.", "2. bold both italic", "cell", "in", "div", "after"]);
    // Deep nesting neither overflows the stack nor grows locations without
    // bound; nesting past the limit is refused before parsing, which is
    // quadratic in depth.
    let deep = format!("{}text{}", "<div>".repeat(1_500), "</div>".repeat(1_500));
    let document = read(deep.as_bytes());
    assert_eq!(document.text, "text\n");
    assert!(document.locations.iter().all(|(_, l)| l.to_string().len() < 64 * 8), "{:?}", document.locations);
    let deeper = "<div>".repeat(50_000);
    let error = super::read(deeper.as_bytes(), "deep.html").expect_err("too deep").to_string();
    assert!(error.contains("deep.html") && error.contains("nested 50000 deep, more than 2000"), "{error}");
}

#[test]
fn encodings() {
    assert_eq!(read(b"\xEF\xBB\xBF<p>caf\xC3\xA9</p>").text, "café\n");
    let utf16: Vec<u8> =
        [0xFF, 0xFE].into_iter().chain("<p>café</p>".encode_utf16().flat_map(u16::to_le_bytes)).collect();
    assert_eq!(read(&utf16).text, "café\n");
    let declared = b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1252\"><p>caf\xe9 \x93quoted\x94 \x80</p>";
    assert_eq!(read(declared).text, "café “quoted” €\n");
    assert_eq!(read(b"<meta charset='ISO-8859-1'><p>na\xefve</p>").text, "naïve\n");
    let undeclared = read_bytes(b"<p>caf\xe9</p>", Format::Html, "page.html");
    assert!(matches!(undeclared, Err(Error::Encoding { declared: None, .. })), "{undeclared:?}");
    let other = read_bytes(b"<meta charset=\"shift_jis\"><p>\x82\xa0</p>", Format::Html, "page.html");
    match other {
        Err(e @ Error::Encoding { .. }) => assert_eq!(
            e.to_string(),
            "page.html: not UTF-8 text (it declares charset shift_jis) (expected UTF-8, or HTML that declares windows-1252 or ISO-8859-1)"
        ),
        other => panic!("{other:?}"),
    }
}
