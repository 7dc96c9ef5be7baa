//! Text to token ids, with truncation and dynamic padding set in code.
//!
//! The `tokenizer.json` shipped with all-MiniLM-L6-v2 pins padding to a fixed
//! 128 tokens; padding every batch to its longest text instead is what makes
//! length-bucketed batches cheap, so both settings are overridden here.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use tokenizers::{PaddingDirection, PaddingParams, PaddingStrategy, Tokenizer, TruncationParams, TruncationStrategy};

use crate::Error;

/// A tokenizer configured for classification batches.
pub struct TextEncoder {
    tokenizer: Tokenizer,
    /// The same vocabulary without truncation, padding or special tokens,
    /// for texts that are read in pieces ([`crate::reading`]).
    pieces: Tokenizer,
    /// What the tokenizer puts before and after a text's tokens
    /// (`[CLS]` and `[SEP]` for BERT).
    head: Vec<u32>,
    tail: Vec<u32>,
    max_length: usize,
    path: PathBuf,
}

/// Token ids and attention mask of a batch, both `(batch, longest)` `u32`.
pub struct EncodedBatch {
    /// Token ids, padded with the tokenizer's pad id.
    pub ids: Tensor,
    /// 1 for tokens, 0 for padding.
    pub attention_mask: Tensor,
}

impl TextEncoder {
    /// Load `tokenizer.json`, truncating to `max_length` tokens (special
    /// tokens included) and padding each batch to its longest member.
    pub fn from_file(path: &Path, max_length: usize) -> Result<Self, Error> {
        let tokenizer_error = |message: String| Error::Tokenizer { path: path.to_path_buf(), message };
        if !path.exists() {
            return Err(tokenizer_error("file not found".to_string()));
        }
        let mut tokenizer = Tokenizer::from_file(path).map_err(|err| tokenizer_error(err.to_string()))?;
        let mut pieces = tokenizer.clone();
        pieces.with_truncation(None).map_err(|err| tokenizer_error(err.to_string()))?;
        pieces.with_padding(None);
        let (head, tail) = special_tokens(&pieces).map_err(tokenizer_error)?;
        let (pad_id, pad_token, pad_type_id) = match tokenizer.get_padding() {
            Some(p) => (p.pad_id, p.pad_token.clone(), p.pad_type_id),
            None => {
                let id = tokenizer
                    .token_to_id("[PAD]")
                    .ok_or_else(|| tokenizer_error("no padding settings and no `[PAD]` token".to_string()))?;
                (id, "[PAD]".to_string(), 0)
            }
        };
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length,
                strategy: TruncationStrategy::LongestFirst,
                ..Default::default()
            }))
            .map_err(|err| tokenizer_error(err.to_string()))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            direction: PaddingDirection::Right,
            pad_to_multiple_of: None,
            pad_id,
            pad_type_id,
            pad_token,
        }));
        Ok(Self { tokenizer, pieces, head, tail, max_length, path: path.to_path_buf() })
    }

    /// The truncation length.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// The vocabulary size, for checking against a model config.
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// Token ids of each text, truncated and unpadded, for batching later
    /// with [`TextEncoder::batch`].
    pub fn token_ids(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, Error> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|err| Error::Tokenizer { path: self.path.clone(), message: err.to_string() })?;
        Ok(encodings
            .iter()
            .map(|e| {
                e.get_ids().iter().zip(e.get_attention_mask()).filter(|(_, m)| **m == 1).map(|(id, _)| *id).collect()
            })
            .collect())
    }

    /// Token ids of each text in full, without special tokens: pieces that
    /// [`TextEncoder::sequence`] joins into sequences.
    pub fn piece_ids(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, Error> {
        let encodings = self
            .pieces
            .encode_batch(texts.to_vec(), false)
            .map_err(|err| Error::Tokenizer { path: self.path.clone(), message: err.to_string() })?;
        Ok(encodings.iter().map(|e| e.get_ids().to_vec()).collect())
    }

    /// `[CLS] parts... [SEP]`: one sequence as the model reads it, with
    /// the special tokens the tokenizer adds to a single text.
    pub fn sequence(&self, parts: &[&[u32]]) -> Vec<u32> {
        let len = parts.iter().map(|p| p.len()).sum::<usize>() + self.head.len() + self.tail.len();
        let mut ids = Vec::with_capacity(len);
        ids.extend_from_slice(&self.head);
        for part in parts {
            ids.extend_from_slice(part);
        }
        ids.extend_from_slice(&self.tail);
        ids
    }

    /// Tokens every sequence spends on special tokens.
    pub fn special_length(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    /// Pad token-id sequences to the longest one and put them on `device`.
    pub fn batch(&self, sequences: &[&[u32]], device: &Device) -> Result<EncodedBatch, Error> {
        let pad = self.tokenizer.get_padding().map_or(0, |p| p.pad_id);
        let longest = sequences.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(sequences.len() * longest);
        let mut mask = Vec::with_capacity(sequences.len() * longest);
        for sequence in sequences {
            ids.extend_from_slice(sequence);
            ids.extend(std::iter::repeat_n(pad, longest - sequence.len()));
            mask.extend(std::iter::repeat_n(1u32, sequence.len()));
            mask.extend(std::iter::repeat_n(0u32, longest - sequence.len()));
        }
        let shape = (sequences.len(), longest);
        Ok(EncodedBatch {
            ids: Tensor::from_vec(ids, shape, device)?,
            attention_mask: Tensor::from_vec(mask, shape, device)?,
        })
    }

    /// Encode a batch on `device`.
    pub fn encode(&self, texts: &[&str], device: &Device) -> Result<EncodedBatch, Error> {
        let ids = self.token_ids(texts)?;
        let sequences: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
        self.batch(&sequences, device)
    }
}

/// The ids the tokenizer's post-processor puts before and after a single
/// text's tokens, found by encoding one word with and without them.
fn special_tokens(tokenizer: &Tokenizer) -> Result<(Vec<u32>, Vec<u32>), String> {
    let probe = "the";
    let bare = tokenizer.encode(probe, false).map_err(|err| err.to_string())?;
    let full = tokenizer.encode(probe, true).map_err(|err| err.to_string())?;
    let (bare, full) = (bare.get_ids(), full.get_ids());
    let at = (0..=full.len().saturating_sub(bare.len())).find(|&i| full[i..].starts_with(bare)).ok_or_else(|| {
        "its post-processor changes a text's own tokens; expected it only to add special tokens".to_string()
    })?;
    Ok((full[..at].to_vec(), full[at + bare.len()..].to_vec()))
}
