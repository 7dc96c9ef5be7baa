//! A check of a Parquet file's footer before polars reads it.
//!
//! The footer is a Thrift structure in the compact protocol, and every list,
//! map and string in it starts with its length. polars-parquet 0.55 reserves
//! memory for that many elements before it reads them, so a corrupt length
//! asks for hundreds of gigabytes and the process aborts ("memory allocation
//! failed"): no panic to catch, no error to report. Found by
//! `fuzz/fuzz_targets/table.rs` in a 171-byte file. This walks the footer
//! without interpreting it and refuses any length that the bytes left could
//! not hold: each element of a list takes at least one byte, each map entry
//! two.

/// Nesting deeper than this is refused: the real footer nests five deep.
const MAX_DEPTH: usize = 64;

/// Parquet's magic number, at both ends of a file.
const MAGIC: &[u8; 4] = b"PAR1";

/// Check the footer of the Parquet file `bytes`. A file too short to have a
/// footer, or whose footer length points outside it, passes: polars reports
/// those itself. Otherwise a footer length that the file cannot hold is
/// described, with where it lies.
pub fn check(bytes: &[u8]) -> Result<(), String> {
    let Some(body) = bytes.strip_suffix(MAGIC) else { return Ok(()) };
    let Some(length_at) = body.len().checked_sub(4) else { return Ok(()) };
    let length = u32::from_le_bytes([body[length_at], body[length_at + 1], body[length_at + 2], body[length_at + 3]]);
    let Some(start) = length_at.checked_sub(length as usize) else { return Ok(()) };
    let mut footer = Compact { bytes: &body[start..length_at], at: 0 };
    footer.value(STRUCT, false, 0).map_err(|message| format!("{message} at byte {} of its footer", footer.at))
}

const BOOL_TRUE: u8 = 1;
const BOOL_FALSE: u8 = 2;
const BYTE: u8 = 3;
const I16: u8 = 4;
const I32: u8 = 5;
const I64: u8 = 6;
const DOUBLE: u8 = 7;
const BINARY: u8 = 8;
const LIST: u8 = 9;
const SET: u8 = 10;
const MAP: u8 = 11;
const STRUCT: u8 = 12;

/// A reader of Thrift's compact protocol that only skips.
struct Compact<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Compact<'_> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn byte(&mut self) -> Result<u8, String> {
        let byte = *self.bytes.get(self.at).ok_or("the footer ends inside a value")?;
        self.at += 1;
        Ok(byte)
    }

    fn skip(&mut self, count: u64) -> Result<(), String> {
        if count > self.remaining() as u64 {
            return Err(format!("a length of {count} bytes where {} are left", self.remaining()));
        }
        self.at += count as usize;
        Ok(())
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f).checked_shl(shift).unwrap_or(0);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a variable-length integer longer than 10 bytes".to_string())
    }

    /// A count of elements of at least `bytes_each` bytes.
    fn count(&mut self, count: u64, bytes_each: u64, what: &str) -> Result<u64, String> {
        if count.saturating_mul(bytes_each) > self.remaining() as u64 {
            return Err(format!("a {what} of {count} elements where {} bytes are left", self.remaining()));
        }
        Ok(count)
    }

    /// Skip one value of compact type `kind`; `in_collection` because a
    /// boolean there is a byte of its own, and in a struct part of the
    /// field's header.
    fn value(&mut self, kind: u8, in_collection: bool, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("structures nested more than {MAX_DEPTH} deep"));
        }
        match kind {
            BOOL_TRUE | BOOL_FALSE if in_collection => self.skip(1),
            BOOL_TRUE | BOOL_FALSE => Ok(()),
            BYTE => self.skip(1),
            I16 | I32 | I64 => self.varint().map(drop),
            DOUBLE => self.skip(8),
            BINARY => {
                let length = self.varint()?;
                self.skip(length)
            }
            LIST | SET => {
                let header = self.byte()?;
                let short = u64::from(header >> 4);
                let count = if short == 15 { self.varint()? } else { short };
                let count = self.count(count, 1, "list")?;
                for _ in 0..count {
                    self.value(header & 0x0f, true, depth + 1)?;
                }
                Ok(())
            }
            MAP => {
                let count = self.varint()?;
                let count = self.count(count, 2, "map")?;
                if count > 0 {
                    let kinds = self.byte()?;
                    for _ in 0..count {
                        self.value(kinds >> 4, true, depth + 1)?;
                        self.value(kinds & 0x0f, true, depth + 1)?;
                    }
                }
                Ok(())
            }
            STRUCT => loop {
                let header = self.byte()?;
                if header == 0 {
                    return Ok(());
                }
                if header >> 4 == 0 {
                    // A field id that is not a small step from the last.
                    self.varint()?;
                }
                self.value(header & 0x0f, false, depth + 1)?;
            },
            other => Err(format!("a value of unknown type {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file whose footer is `footer`.
    fn file(footer: &[u8]) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(footer);
        bytes.extend_from_slice(&(footer.len() as u32).to_le_bytes());
        bytes.extend_from_slice(MAGIC);
        bytes
    }

    #[test]
    fn a_footer_polars_wrote_passes() {
        use polars::prelude::*;
        let labels =
            Series::new("labels".into(), &[Series::new("".into(), &["a", "b"]), Series::new("".into(), &["c"])]);
        let columns = vec![
            Column::new("text".into(), &["One", "Two"]),
            Column::new("n".into(), &[1i64, 2]),
            Column::new("x".into(), &[0.5f64, -1.0]),
            labels.into_column(),
        ];
        let mut frame = DataFrame::new(2, columns).expect("frame");
        let mut bytes = Vec::new();
        ParquetWriter::new(&mut bytes).finish(&mut frame).expect("write");
        assert_eq!(check(&bytes), Ok(()));
    }

    /// The fuzzer's input, less its first byte (which picked Parquet): its
    /// footer made polars-parquet ask for 221 GB. The walk stops before the
    /// length polars read, at an integer no Thrift writer produces.
    #[test]
    fn the_fuzzers_length_bomb_is_refused() {
        let err = check(include_bytes!("fixtures/footer-length-bomb.parquet")).expect_err("bomb");
        assert_eq!(err, "a variable-length integer longer than 10 bytes at byte 11 of its footer");
    }

    #[test]
    fn lengths_the_footer_cannot_hold_are_refused() {
        // Field 1, a list of 15+ elements of i32: 1,000,000 of them claimed.
        let err = check(&file(&[0x19, 0xf5, 0xc0, 0x84, 0x3d, 0x00])).expect_err("list");
        assert!(err.contains("a list of 1000000 elements where 1 bytes are left at byte 5"), "{err}");
        // Field 1, a string of 300 bytes with 2 there.
        let err = check(&file(&[0x18, 0xac, 0x02, b'a', b'b'])).expect_err("string");
        assert!(err.contains("a length of 300 bytes where 2 are left"), "{err}");
        // Field 1, a map of 5 entries with 3 bytes left.
        let err = check(&file(&[0x1b, 0x05, 0x55, 0x02, 0x02])).expect_err("map");
        assert!(err.contains("a map of 5 elements"), "{err}");
        let err = check(&file(&[0x1d])).expect_err("unknown type 13");
        assert!(err.contains("unknown type 13"), "{err}");
        let deep: Vec<u8> = std::iter::repeat_n(0x1c, 100).collect();
        assert!(check(&file(&deep)).expect_err("deep").contains("nested more than 64 deep"));
        let err = check(&file(&[0x15])).expect_err("truncated");
        assert!(err.contains("ends inside a value"), "{err}");
    }

    #[test]
    fn well_formed_values_of_every_type_pass() {
        let footer = [
            0x11, // field 1: true
            0x13, 0x7f, // field 2: byte
            0x14, 0x03, 0x15, 0x80, 0x01, 0x16, 0x02, // i16, i32 (two bytes), i64
            0x17, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, // double 1.0
            0x18, 0x02, b'h', b'i', // binary "hi"
            0x19, 0x21, 0x01, // list of one bool
            0x1a, 0x15, 0x04, // set of one i32
            0x1b, 0x01, 0x85, 0x02, b'k', 0x06, // map of one string to i32
            0x1c, 0x15, 0x02, 0x00, // struct with an i32, stopped
            0x05, 0x40, 0x02, // i32 with a long field id (32)
            0x00,
        ];
        assert_eq!(check(&file(&footer)), Ok(()));
    }

    #[test]
    fn files_without_a_footer_are_left_to_polars() {
        for bytes in [&b""[..], b"PAR1", b"xxxxPAR1", b"PAR1\xff\xff\xff\x7fPAR1", b"not parquet at all"] {
            assert_eq!(check(bytes), Ok(()), "{bytes:?}");
        }
    }
}
