//! Unit tests of the segmenter.

use super::*;

fn ids(source: &str) -> Vec<String> {
    segment("d", source).into_iter().map(|p| p.id).collect()
}

fn one<'a>(provisions: &'a [Provision], id: &str) -> &'a Provision {
    provisions.iter().find(|p| p.id == id).unwrap_or_else(|| panic!("no {id} in {provisions:#?}"))
}

#[test]
fn heading_forms() {
    for heading in ["Article 1", "Art. 1", "ARTICLE 1", "### Article  1  ", "#Article 1", "**Article 1**", "Article 1."]
    {
        let source = format!("{heading}\n\nThe Parties shall cooperate.\n");
        let provisions = segment("d", &source);
        assert_eq!(provisions.len(), 1, "{heading}: {provisions:#?}");
        assert_eq!(provisions[0].id, "d:art1", "{heading}");
        assert_eq!(provisions[0].kind, ProvisionKind::Article);
        assert_eq!(provisions[0].text, "The Parties shall cooperate.");
    }
}

#[test]
fn titles_on_the_heading_line_or_the_next() {
    let cases = [
        "Article 5 – Data interference\nEach Party shall act.\n",
        "Article 5. Data interference\nEach Party shall act.\n",
        "Article 5 - Data interference\nEach Party shall act.\n",
        "Article 5: Data interference\nEach Party shall act.\n",
        "### Article 5\n\n####Data interference\n\nEach Party shall act.\n",
        "### Article 5\n\n####- Data interference\n\nEach Party shall act.\n",
        "Article 5\nData interference\n\nEach Party shall act.\n",
        "ARTICLE 5\n*Data interference*\nEach Party shall act.\n",
    ];
    for source in cases {
        let provisions = segment("d", source);
        assert_eq!(provisions.len(), 1, "{source:?}: {provisions:#?}");
        assert_eq!(provisions[0].title.as_deref(), Some("Data interference"), "{source:?}");
        assert_eq!(provisions[0].text, "Each Party shall act.", "{source:?}");
    }
}

#[test]
fn body_lines_are_not_mistaken_for_titles_or_headings() {
    let provisions = segment("d", "Article 2\nEveryone has the right to life.\n");
    assert_eq!(provisions[0].title, None);
    assert_eq!(provisions[0].text, "Everyone has the right to life.");

    let provisions = segment("d", "Article 3\nNo one shall be subjected\nto torture.\n");
    assert_eq!(provisions[0].title, None);
    assert_eq!(provisions[0].text, "No one shall be subjected to torture.");

    // A sentence that cites an article is not a heading.
    let provisions = segment(
        "d",
        "Article 4\n1. Each Party shall act.\nArticle 2 shall apply to the measures referred to in paragraph 1.\n",
    );
    assert_eq!(
        ids("Article 4\n1. Each Party shall act.\nArticle 2 shall apply mutatis mutandis to the measures.\n"),
        ["d:art4.1"]
    );
    assert!(provisions[0].text.ends_with("referred to in paragraph 1."), "{provisions:#?}");
}

#[test]
fn paragraph_number_styles() {
    for (one, two) in [("1.", "2."), ("1)", "2)"), ("(1)", "(2)")] {
        let source = format!("Article 7\n{one} First paragraph.\n{two} Second paragraph.\n");
        let provisions = segment("d", &source);
        assert_eq!(provisions.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), ["d:art7.1", "d:art7.2"], "{one}");
        assert_eq!(provisions[1].paragraph.as_deref(), Some("2"));
        assert_eq!(provisions[1].text, "Second paragraph.");
        assert_eq!(provisions[1].kind, ProvisionKind::Paragraph);
    }
    // No space after the number.
    assert_eq!(ids("Article 7\n1.First.\n2.Second.\n"), ["d:art7.1", "d:art7.2"]);
}

#[test]
fn a_paragraph_number_alone_on_its_line() {
    let source = "Article 1\n1. Each Party shall act.\n2.\na) To this end, it may inquire;\nb) It shall hear claims.\n3. Third.\n";
    let provisions = segment("d", source);
    let two = one(&provisions, "d:art1.2");
    assert_eq!(two.text, "a) To this end, it may inquire; b) It shall hear claims.");
    assert_eq!(&source[two.start..two.start + 2], "2.");
    assert_eq!(provisions.len(), 3);
}

#[test]
fn sub_paragraphs_join_their_paragraph() {
    let source = "Article 1\n1. For the purposes of this Convention:\n\na) \"system\" means a device;\n(b) \"data\" means facts;\nc. \"provider\" means:\n(i) an entity, and\n(ii) another entity;\nii) more;\n2. Second.\n";
    let provisions = segment("d", source);
    assert_eq!(provisions.len(), 2, "{provisions:#?}");
    let first = &provisions[0];
    assert!(first.text.starts_with("For the purposes of this Convention: a) \"system\""), "{}", first.text);
    assert!(first.text.contains("(i) an entity, and (ii) another entity; ii) more;"), "{}", first.text);
    // A lettered article without numbered paragraphs is one provision.
    assert_eq!(ids("Article 2\nAssistance may be refused:\n(a) if political;\n(b) if prejudicial.\n"), ["d:art2"]);
}

#[test]
fn numbered_sub_items_of_another_style_stay_inside_the_paragraph() {
    let source = "Article 3\n1. A Party shall:\n(1) do this;\n(2) do that.\n2. Second.\n";
    assert_eq!(ids(source), ["d:art3.1", "d:art3.2"]);
    // Numbers that go backwards are text, not paragraphs.
    assert_eq!(ids("Article 3\n1. One.\n2. Two.\n1. Again one.\n"), ["d:art3.1", "d:art3.2"]);
}

#[test]
fn intro_before_the_first_numbered_paragraph() {
    let provisions = segment("d", "Article 9\nThe Parties agree as follows.\n1. First.\n2. Second.\n");
    assert_eq!(provisions.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), ["d:art9", "d:art9.1", "d:art9.2"]);
    assert_eq!(provisions[0].kind, ProvisionKind::ArticleIntro);
}

#[test]
fn divisions_nest_and_reset() {
    let source = "### CHAPTER  II\n\n####MEASURES\n\n###SECTION 1\n\n###TITLE 1\n####OFFENCES\n### Article 2\nText two.\n###TITLE 2\n### Article 3\nText three.\nPart III – Final provisions\nArticle 4\nText four.\n";
    let provisions = segment("d", source);
    let chapter = |id: &str| one(&provisions, id).chapter.clone().unwrap_or_default();
    assert_eq!(chapter("d:art2"), "Chapter II – MEASURES > Section 1 > Title 1 – OFFENCES");
    assert_eq!(chapter("d:art3"), "Chapter II – MEASURES > Section 1 > Title 2");
    assert_eq!(chapter("d:art4"), "Chapter II – MEASURES > Section 1 > Title 2 > Part III – Final provisions");
    let reset = segment("d", "Chapter I\nArticle 1\nA.\nSection 1\nArticle 2\nB.\nChapter II\nArticle 3\nC.\n");
    assert_eq!(one(&reset, "d:art2").chapter.as_deref(), Some("Chapter I > Section 1"));
    assert_eq!(one(&reset, "d:art3").chapter.as_deref(), Some("Chapter II"));
}

#[test]
fn preamble_closing_and_a_second_instrument() {
    let source = "####Convention on Things\n\nPreamble The States Parties, considering things, have agreed as follows:\n\n### Article 1\nText.\n### Article 2\n1. One.\n2. Two.\nIN WITNESS WHEREOF the undersigned have signed.\nDONE at Rome.\n\n####Optional Protocol to the Convention\nThe States Parties to this Protocol agree:\n### Article 1\nProtocol text.\n";
    let provisions = segment("d", source);
    let got: Vec<_> = provisions.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(got, ["d:preamble", "d:art1", "d:art2.1", "d:art2.2", "d:closing", "d-2:preamble", "d-2:art1"]);
    assert_eq!(provisions[0].text, "The States Parties, considering things, have agreed as follows:");
    assert_eq!(provisions[0].instrument.as_deref(), Some("Convention on Things"));
    assert_eq!(provisions[4].text, "IN WITNESS WHEREOF the undersigned have signed. DONE at Rome.");
    assert_eq!(provisions[6].document, "d-2");
    assert_eq!(provisions[6].instrument.as_deref(), Some("Optional Protocol to the Convention"));
    // Numbering that restarts without a testimonium also opens a new instrument.
    assert_eq!(ids("Article 1\nA.\nArticle 2\nB.\nArticle 1\nC.\n"), ["d:art1", "d:art2", "d-2:art1"]);
}

#[test]
fn crlf_bom_tabs_and_irregular_spacing() {
    let plain = "Article 1 – Scope\n1. Each  Party shall\tact.\n2. Second.\n";
    let messy = "\u{feff}Article\t1 –  Scope\r\n\r\n1.\tEach  Party   shall\tact.  \r\n 2.   Second.\r\n";
    let a = segment("d", plain);
    let b = segment("d", messy);
    assert_eq!(a.len(), 2);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((&x.id, &x.text, &x.title), (&y.id, &y.text, &y.title));
    }
    assert_eq!(b[0].text, "Each Party shall act.");
    // Byte ranges point into the original bytes, BOM included.
    assert_eq!(&messy[b[0].start..b[0].end], "1.\tEach  Party   shall\tact.");
    assert_eq!(&messy[b[1].start..b[1].end], "2.   Second.");
    assert_eq!(b[0].line, 3);
}

#[test]
fn byte_ranges_cover_multi_line_provisions() {
    let source = "Article 1\n1. First line\ncontinues here.\n\n2. Second.\n";
    let provisions = segment("d", source);
    assert_eq!(&source[provisions[0].start..provisions[0].end], "1. First line\ncontinues here.");
}

#[test]
fn article_numbers_with_suffixes_and_duplicates() {
    assert_eq!(ids("Article 12 bis\nText.\nArticle 12ter – Title\nMore.\n"), ["d:art12bis", "d:art12ter"]);
    assert_eq!(ids("Article 5\nA.\nArticle 5\nB.\n"), ["d:art5", "d:art5~2"]);
}

#[test]
fn degenerate_inputs() {
    assert!(segment("d", "").is_empty());
    assert!(segment("d", "\u{feff}").is_empty());
    assert!(segment("d", "\n\n  \r\n").is_empty());
    assert_eq!(ids("Just some text without articles."), ["d:preamble"]);
    assert_eq!(ids("### Article 1\n"), Vec::<String>::new());
}

/// Lines built from the pieces the segmenter looks for, in random order,
/// with random bytes between them: every input must segment without a
/// panic, with ranges on character boundaries.
#[test]
fn never_panics_on_random_inputs() {
    let pieces = [
        "Article ",
        "Art. ",
        "ARTICLE ",
        "#",
        "###",
        "1",
        "2",
        "12",
        "(",
        ")",
        ".",
        "a)",
        "(i)",
        " ",
        "\t",
        "\r",
        "\n",
        "\n\n",
        "Chapter ",
        "PART ",
        "IV",
        "–",
        "-",
        "IN WITNESS WHEREOF",
        "Preamble",
        "*",
        "é",
        "\u{feff}",
        "ß",
        "bis",
        "Title",
        "😀",
        "Done at",
    ];
    let mut rng = clause_rng::SplitMix64::new(42);
    let mut below = |n: usize| rng.below(n);
    for _ in 0..3000 {
        let len = below(60);
        let source: String = (0..len).map(|_| pieces[below(pieces.len())]).collect();
        for provision in segment("d", &source) {
            assert!(provision.start <= provision.end && provision.end <= source.len(), "{source:?}");
            assert!(source.is_char_boundary(provision.start) && source.is_char_boundary(provision.end), "{source:?}");
            assert!(!provision.text.is_empty());
        }
    }
}

#[test]
fn a_document_without_articles_has_paragraphs_then_lettered_sections() {
    let source = "# Agreement\n\nThe Parties: Desiring to cooperate,\n\n1. The first.\n\n2. The second.\nIt goes on.\n\n\
                  DONE at Brussels.\n\n### Nr. I\n\nDear Sir, we write.\n\nI. Purpose: first.\n\nII.Sharing: second.\n\n\
                  1. an item\n\n2. another item\n\nIII. Review: third.\n\n### Nr. II\n\nDear Madam, thank you.\n";
    let provisions = segment("d", source);
    let ids: Vec<&str> = provisions.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "d:preamble",
            "d:par1",
            "d:par2",
            "d:closing",
            "d-2:preamble",
            "d-2:sec1",
            "d-2:sec2",
            "d-2:sec3",
            "d-3:preamble"
        ]
    );
    let second = one(&provisions, "d:par2");
    assert_eq!(
        (second.kind, second.text.as_str(), second.article.as_deref()),
        (ProvisionKind::Paragraph, "The second. It goes on.", None)
    );
    let sharing = one(&provisions, "d-2:sec2");
    assert_eq!((sharing.kind, sharing.paragraph.as_deref()), (ProvisionKind::Section, Some("II")));
    assert_eq!(sharing.text, "Sharing: second. 1. an item 2. another item");
    assert!(source[sharing.start..sharing.end].starts_with("II.Sharing"));
    assert_eq!(one(&provisions, "d-3:preamble").instrument.as_deref(), Some("Nr. II"));
}

#[test]
fn numbered_lines_outside_articles_of_a_later_instrument_stay_text() {
    // An annex after the testimonium lists items as 1., 2.: one provision.
    let source =
        "Article 1\nThe Parties agree.\nDONE at Vienna.\n### Annex\n1. A convention.\n2. Another convention.\n";
    assert_eq!(ids(source), ["d:art1", "d:closing", "d-2:preamble"]);
    // A Roman numeral inside an article is text, not a section.
    assert_eq!(ids("Article 1\nI. The Parties agree.\nII. They also agree.\n"), ["d:art1"]);
}

#[test]
fn a_bare_numeral_heading_opens_a_chapter() {
    let source = "The Parties have agreed as follows:\n\n###I\n\n####General Provisions\n\n### Article 1\n\nText one.\n\n### II\n\n### Article 2\n\nText two.\n";
    let provisions = segment("d", source);
    assert_eq!(one(&provisions, "d:preamble").text, "The Parties have agreed as follows:");
    assert_eq!(one(&provisions, "d:art1").chapter.as_deref(), Some("I – General Provisions"));
    assert_eq!(one(&provisions, "d:art2").chapter.as_deref(), Some("II"));
    assert_eq!(roman_value("XXXIX"), Some(39));
    assert_eq!((roman_value("IIII"), roman_value("XL"), roman_value("")), (None, None, None));
}
