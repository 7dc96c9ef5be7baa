//! The lexical stage: a linear model per label over TF-IDF word 1–3-grams,
//! whose margin is stacked with the encoder's score in each label's
//! calibration (`clause_eval::calibration::Platt::margin`).
//!
//! Why a second reader: cross-validated by document, a TF-IDF + linear SVM
//! ties the fine-tuned encoder on tos-unfair and trails it by a few points
//! on treaty-risk, and the two err on different examples. Stacking the
//! SVM's margin beside the encoder's logit, fitted on validation, raised
//! micro-F1 by about four points on both recipes' folds
//! (`scripts/lexical-stack-check`, README). The encoder still decides
//! alone where the stage is absent (models trained before it, or with
//! `lexical = false`).
//!
//! A stage that reads [`Reading::Sentences`] scores a provision's whole
//! text and each of its sentences (the pieces [`Views::of`] scores), and
//! keeps each label's highest margin, as the encoder keeps its highest
//! score: read whole, one risky sentence buried in a paragraph of
//! boilerplate hardly moves a margin, which then pulled a calibrated score
//! down exactly where a reviewer most needs the flag.
//!
//! [`Views::of`]: crate::reading::Views::of
//!
//! This module owns the stage's two files in a model directory:
//! [`LEXICAL_FILE`] (settings and the vocabulary, in index order) and
//! [`LEXICAL_WEIGHTS_FILE`] (idf, weights and biases). Fitting the weights is
//! training's (`clause_train::lexical`); turning a text into features is
//! here, so that training and inference read text one way.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::card::{save_tensors, write_atomically};
use crate::input::{Context, Passage};
use crate::reading::Reading;
use clause_segment::spans::{Granularity, spans};

/// The stage's settings and vocabulary.
pub const LEXICAL_FILE: &str = "lexical.json";
/// The stage's numbers: `idf` `[terms]`, `weight` `[labels, terms]`, `bias` `[labels]`.
pub const LEXICAL_WEIGHTS_FILE: &str = "lexical.safetensors";
/// Version of the stage's layout.
pub const LEXICAL_FORMAT: u32 = 1;
/// Longest word n-gram that is a feature.
pub const MAX_NGRAM: usize = 3;

/// A sparse feature vector: (term index, value), indices increasing.
pub type Features = Vec<(u32, f32)>;

/// The terms of a fitted vocabulary and their inverse document frequencies.
#[derive(Debug, Clone, PartialEq)]
pub struct Vocabulary {
    index: HashMap<String, u32>,
    terms: Vec<String>,
    idf: Vec<f32>,
}

impl Vocabulary {
    /// Every 1–[`MAX_NGRAM`]-gram of `texts`, with smoothed idf
    /// `ln((1 + n) / (1 + df)) + 1` (scikit-learn's `TfidfVectorizer`, which
    /// the baseline script uses). Terms are indexed in sorted order, so a
    /// fit does not depend on hash order.
    pub fn fit(texts: &[&str]) -> Self {
        let mut df: HashMap<String, u32> = HashMap::new();
        for text in texts {
            let mut grams = ngrams(text);
            grams.sort_unstable();
            grams.dedup();
            for gram in grams {
                *df.entry(gram).or_insert(0) += 1;
            }
        }
        let mut terms: Vec<String> = df.keys().cloned().collect();
        terms.sort_unstable();
        let n = texts.len() as f64;
        let idf = terms.iter().map(|t| (((1.0 + n) / (1.0 + f64::from(df[t]))).ln() + 1.0) as f32).collect();
        Self::new(terms, idf)
    }

    fn new(terms: Vec<String>, idf: Vec<f32>) -> Self {
        let index = terms.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
        Self { index, terms, idf }
    }

    /// Terms known.
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    /// The index of `term` (words joined by a space), if known.
    pub fn term(&self, term: &str) -> Option<usize> {
        self.index.get(term).map(|&i| i as usize)
    }

    /// Whether no term is known.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The features of `text`: sublinear term frequency (`1 + ln tf`) times
    /// idf, scaled to unit length. Unknown terms are left out.
    pub fn features(&self, text: &str) -> Features {
        let mut counts: HashMap<u32, u32> = HashMap::new();
        for gram in ngrams(text) {
            if let Some(&i) = self.index.get(&gram) {
                *counts.entry(i).or_insert(0) += 1;
            }
        }
        let mut out: Features =
            counts.into_iter().map(|(i, tf)| (i, (1.0 + (tf as f32).ln()) * self.idf[i as usize])).collect();
        out.sort_unstable_by_key(|&(i, _)| i);
        let norm = out.iter().map(|&(_, v)| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            for (_, v) in &mut out {
                *v /= norm;
            }
        }
        out
    }
}

/// Lower-cased words of two or more word characters (letters, digits,
/// underscore: scikit-learn's default `\b\w\w+\b`), and their n-grams up to
/// [`MAX_NGRAM`], words joined by a space.
fn ngrams(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let words: Vec<&str> =
        lower.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| w.chars().nth(1).is_some()).collect();
    let mut out = Vec::with_capacity(words.len() * MAX_NGRAM);
    for n in 1..=MAX_NGRAM {
        for window in words.windows(n) {
            out.push(window.join(" "));
        }
    }
    out
}

/// What the stage reads of a passage: its text, after its headings when
/// `headings` (as [`Context::Headings`] composes them).
pub fn stage_text<'a>(passage: &Passage<'a>, headings: bool) -> std::borrow::Cow<'a, str> {
    let context = if headings { Context::Headings } else { Context::Text };
    context.compose(passage)
}

/// The sentences of `passage` that [`Views::of`](crate::reading::Views::of)
/// scores on their own, each under the passage's headings; none when the
/// passage is one sentence.
fn sentences<'a>(passage: &Passage<'a>) -> Vec<Passage<'a>> {
    let pieces = spans(passage.text, Granularity::Sentences);
    if pieces.len() < 2 {
        return Vec::new();
    }
    pieces.into_iter().map(|piece| Passage { text: &passage.text[piece], ..*passage }).collect()
}

/// A fitted lexical stage: one linear model per label over a vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub struct LexicalStage {
    /// Whether it reads headings before the text.
    pub headings: bool,
    /// Whether it also reads each sentence on its own, keeping the highest
    /// margin.
    pub reading: Reading,
    /// The regularisation it was fitted with (recorded, not used to score).
    pub c: f64,
    /// Its terms.
    pub vocabulary: Vocabulary,
    /// Per label, a weight per term (all zero for a label training never saw).
    pub weights: Vec<Vec<f32>>,
    /// Per label, the bias.
    pub biases: Vec<f32>,
}

/// What [`LEXICAL_FILE`] holds.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: u32,
    headings: bool,
    /// Absent in stages written before sentence reading: those read whole.
    #[serde(default)]
    reading: Reading,
    c: f64,
    labels: usize,
    terms: Vec<String>,
}

impl LexicalStage {
    /// Every label's margin for every passage (`[passage][label]`); positive
    /// where the linear model alone would flag the label. Reading
    /// sentences, a label's margin is the highest of the passage's and its
    /// sentences'.
    pub fn margins(&self, passages: &[Passage<'_>]) -> Vec<Vec<f32>> {
        passages
            .par_iter()
            .map(|passage| {
                let mut best = self.margins_of(&stage_text(passage, self.headings));
                if self.reading == Reading::Sentences {
                    for sentence in sentences(passage) {
                        let margins = self.margins_of(&stage_text(&sentence, self.headings));
                        for (b, m) in best.iter_mut().zip(margins) {
                            *b = b.max(m);
                        }
                    }
                }
                best
            })
            .collect()
    }

    /// Every label's margin for one text as the stage reads it.
    fn margins_of(&self, text: &str) -> Vec<f32> {
        let features = self.vocabulary.features(text);
        self.weights
            .iter()
            .zip(&self.biases)
            .map(|(w, b)| features.iter().map(|&(i, v)| w[i as usize] * v).sum::<f32>() + b)
            .collect()
    }

    /// Write the stage's two files into `dir`, each atomically.
    pub fn save(&self, dir: &Path) -> Result<(), Error> {
        let header = Header {
            format: LEXICAL_FORMAT,
            headings: self.headings,
            reading: self.reading,
            c: self.c,
            labels: self.biases.len(),
            terms: self.vocabulary.terms.clone(),
        };
        let json = serde_json::to_vec(&header).map_err(|err| Error::Config {
            path: dir.join(LEXICAL_FILE),
            message: format!("cannot encode the lexical stage: {err}"),
        })?;
        let cpu = Device::Cpu;
        let terms = self.vocabulary.len();
        let flat: Vec<f32> = self.weights.iter().flatten().copied().collect();
        let tensors = HashMap::from([
            ("idf".to_string(), Tensor::from_slice(&self.vocabulary.idf, terms, &cpu)?),
            ("weight".to_string(), Tensor::from_vec(flat, (self.biases.len(), terms), &cpu)?),
            ("bias".to_string(), Tensor::from_slice(&self.biases, self.biases.len(), &cpu)?),
        ]);
        save_tensors(&dir.join(LEXICAL_WEIGHTS_FILE), &tensors)?;
        write_atomically(&dir.join(LEXICAL_FILE), &json)
    }

    /// The stage of model directory `dir`, `None` where it has none. Files
    /// that disagree with each other or with the model's `labels` are errors
    /// naming the file.
    pub fn load(dir: &Path, labels: usize) -> Result<Option<Self>, Error> {
        let path = dir.join(LEXICAL_FILE);
        if !path.is_file() {
            return Ok(None);
        }
        let header = std::fs::read(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
        let weights_path = dir.join(LEXICAL_WEIGHTS_FILE);
        let weights = std::fs::read(&weights_path).map_err(|source| Error::Io { path: weights_path, source })?;
        Self::from_bytes(dir, &header, &weights, labels).map(Some)
    }

    /// The stage from the bytes of its two files, as [`LexicalStage::load`]
    /// reads them from `dir` (named in errors): any bytes give a stage or an
    /// error, never a panic (the `model_files` fuzz target).
    pub fn from_bytes(dir: &Path, header: &[u8], weights: &[u8], labels: usize) -> Result<Self, Error> {
        let path = dir.join(LEXICAL_FILE);
        let bad = |message: String| Error::Config { path: path.clone(), message };
        let header: Header = serde_json::from_slice(header).map_err(|err| bad(err.to_string()))?;
        if header.format != LEXICAL_FORMAT {
            return Err(bad(format!("format {} is not one this build reads ({LEXICAL_FORMAT})", header.format)));
        }
        if header.labels != labels {
            return Err(bad(format!("`labels` is {} but the model has {labels}", header.labels)));
        }
        let weights_path = dir.join(LEXICAL_WEIGHTS_FILE);
        let bad_weights = |message: String| Error::Weights { path: weights_path.clone(), message };
        let tensors = candle_core::safetensors::load_buffer(weights, &Device::Cpu)
            .map_err(|err| bad_weights(format!("unreadable: {err}")))?;
        let terms = header.terms.len();
        let tensor = |name: &str, shape: &[usize]| -> Result<Tensor, Error> {
            let t = tensors.get(name).ok_or_else(|| bad_weights(format!("no tensor `{name}`")))?;
            if t.dims() != shape || t.dtype() != DType::F32 {
                return Err(bad_weights(format!(
                    "`{name}` is {:?} {:?}; {LEXICAL_FILE} needs f32 {shape:?}",
                    t.dtype(),
                    t.dims()
                )));
            }
            Ok(t.clone())
        };
        let idf = tensor("idf", &[terms])?.to_vec1::<f32>()?;
        let weights = tensor("weight", &[labels, terms])?.to_vec2::<f32>()?;
        let biases = tensor("bias", &[labels])?.to_vec1::<f32>()?;
        Ok(Self {
            headings: header.headings,
            reading: header.reading,
            c: header.c,
            vocabulary: Vocabulary::new(header.terms, idf),
            weights,
            biases,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lowercased_runs_of_two_word_characters_and_their_ngrams() {
        assert_eq!(
            ngrams("Art. 5: Data-RETENTION é a"),
            ["art", "data", "retention", "art data", "data retention", "art data retention"]
        );
        assert!(ngrams("a . b").is_empty());
    }

    #[test]
    fn features_are_sublinear_tf_idf_of_unit_length_as_scikit_learn_computes_them() {
        let vocabulary = Vocabulary::fit(&["the data the", "data retention"]);
        // Two documents: idf = ln(3 / (1 + df)) + 1.
        let idf_once = (1.5f32).ln() + 1.0;
        let features = vocabulary.features("the the data unknown");
        let value = |term: &str| {
            let i = *vocabulary.index.get(term)?;
            features.iter().find(|&&(j, _)| j == i).map(|&(_, v)| v)
        };
        let the = (1.0 + 2f32.ln()) * idf_once;
        let data = 1.0; // in both documents: ln(1) + 1
        let the_data = idf_once;
        let norm = (the * the + data * data + the_data * the_data).sqrt();
        assert!((value("the").expect("the") - the / norm).abs() < 1e-6);
        assert!((value("data").expect("data") - data / norm).abs() < 1e-6);
        assert!((value("the data").expect("the data") - the_data / norm).abs() < 1e-6);
        // "the the" and "data unknown" were never seen: no feature.
        assert_eq!(value("the the"), None);
        assert_eq!(features.len(), 3);
        assert!(vocabulary.features("nothing known here").is_empty());
    }

    fn stage() -> LexicalStage {
        let vocabulary = Vocabulary::fit(&["intercept communications", "annual report"]);
        let terms = vocabulary.len();
        let intercept = vocabulary.index["intercept"] as usize;
        let mut weights = vec![vec![0.0; terms], vec![0.0; terms]];
        weights[0][intercept] = 2.0;
        LexicalStage { headings: true, reading: Reading::Whole, c: 0.3, vocabulary, weights, biases: vec![-0.5, -1.0] }
    }

    #[test]
    fn margins_read_headings_when_fitted_with_them_and_survive_a_round_trip() {
        let stage = stage();
        let plain = Passage::text("they may intercept");
        let titled = Passage { text: "the annual report", title: Some("Intercept"), chapter: None };
        let margins = stage.margins(&[plain, titled]);
        assert!(margins[0][0] > 0.0 && margins[1][0] > 0.0, "{margins:?}");
        assert_eq!(margins[0][1], -1.0);
        let dir = tempfile::tempdir().expect("tempdir");
        stage.save(dir.path()).expect("save");
        let loaded = LexicalStage::load(dir.path(), 2).expect("load").expect("a stage");
        assert_eq!(loaded, stage);
        assert_eq!(LexicalStage::load(&dir.path().join("none"), 2).expect("absent"), None);
    }

    #[test]
    fn reading_sentences_keeps_each_labels_highest_margin_over_the_whole_and_its_sentences() {
        let whole = stage();
        let by_sentence = LexicalStage { reading: Reading::Sentences, ..stage() };
        let buried = "The annual report of the committee shall be published every year. Each Party may \
                      intercept every message carried over its networks. The report shall be translated into \
                      the official languages of the organisation.";
        let passage = Passage::text(buried);
        let (w, s) = (&whole.margins(&[passage])[0], &by_sentence.margins(&[passage])[0]);
        // Read whole, "intercept" is one term among many; read alone, its
        // sentence's margin is the label's.
        let sentence = "Each Party may intercept every message carried over its networks.";
        assert_eq!(s[0], whole.margins(&[Passage::text(sentence)])[0][0]);
        assert!(s[0] > w[0], "{s:?} {w:?}");
        // No label's margin falls below the whole text's.
        assert!(s.iter().zip(w).all(|(a, b)| a >= b), "{s:?} {w:?}");
        // A one-sentence passage reads alike either way.
        let one = [Passage::text(sentence)];
        assert_eq!(by_sentence.margins(&one), whole.margins(&one));
        let dir = tempfile::tempdir().expect("tempdir");
        by_sentence.save(dir.path()).expect("save");
        assert_eq!(LexicalStage::load(dir.path(), 2).expect("load"), Some(by_sentence));
        // A stage written before sentence reading existed reads whole.
        let path = dir.path().join(LEXICAL_FILE);
        let json = std::fs::read_to_string(&path).expect("read");
        std::fs::write(&path, json.replace("\"reading\":\"sentences\",", "")).expect("write");
        assert_eq!(LexicalStage::load(dir.path(), 2).expect("load").map(|s| s.reading), Some(Reading::Whole));
    }

    #[test]
    fn files_that_do_not_fit_the_model_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        stage().save(dir.path()).expect("save");
        let err = LexicalStage::load(dir.path(), 3).expect_err("label count").to_string();
        assert!(err.contains(LEXICAL_FILE) && err.contains("the model has 3"), "{err}");
        std::fs::write(dir.path().join(LEXICAL_WEIGHTS_FILE), b"not safetensors").expect("write");
        let err = LexicalStage::load(dir.path(), 2).expect_err("weights").to_string();
        assert!(err.contains(LEXICAL_WEIGHTS_FILE), "{err}");
        std::fs::write(dir.path().join(LEXICAL_FILE), b"{\"format\": 1}").expect("write");
        let err = LexicalStage::load(dir.path(), 2).expect_err("header").to_string();
        assert!(err.contains(LEXICAL_FILE) && err.contains("missing field"), "{err}");
        std::fs::remove_file(dir.path().join(LEXICAL_WEIGHTS_FILE)).expect("remove");
        let err = LexicalStage::load(dir.path(), 2).expect_err("no weights").to_string();
        assert!(err.contains(LEXICAL_WEIGHTS_FILE), "{err}");
    }
}
