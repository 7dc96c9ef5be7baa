//! A check of a Parquet file's footer before polars reads it.
//!
//! The footer is a Thrift structure in the compact protocol, and every list,
//! map and string in it starts with its length. polars-parquet 0.55 reserves
//! memory for that many elements before it reads them, so a corrupt length
//! asks for hundreds of gigabytes and the process aborts ("memory allocation
//! failed"): no panic to catch, no error to report. Two such files were found
//! by `fuzz/fuzz_targets/table.rs`:
//! - a list length that the bytes left could not hold;
//! - a field of the wrong type: polars reads each field id it knows with the
//!   reader its schema expects, whatever type the field declares, so a string
//!   where a list belongs had its bytes read as a list header.
//!
//! - a list of booleans under an unknown field id: the Thrift specification
//!   gives each element a byte, but polars skips them without reading any,
//!   so it read the bytes after them as fields, and one as the schema list.
//!
//! Reading polars' reader for that last one showed one more way to part from
//! it: a field id written in full is a varint that polars cuts to 16 bits.
//!
//! So this walks the footer the way polars will: the fields polars reads
//! (the table [`FILE_METADATA`], taken from polars-parquet 0.55's
//! `handwritten_thrift/file_metadata_thrift.rs`) must declare the type polars
//! expects, every other field is skipped by its declared type as polars skips
//! it, field ids are computed as polars computes them, and no length may
//! exceed the bytes left: each element of a list takes at least one byte.
//! Wherever polars would stop with an error, this may stop too; it must
//! never go on along another path than polars, or the lists polars reserves
//! memory for are not the ones checked.

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
    footer
        .fields("FileMetaData", FILE_METADATA, 0)
        .map_err(|message| format!("{message} at byte {} of its footer", footer.at))
}

/// How polars reads a field: the compact types it accepts, and for a
/// structure or a list of them, their fields.
#[derive(Clone, Copy)]
enum Field {
    /// A zigzag varint (i16, i32 or i64: polars reads any of them the same).
    Int,
    /// One byte (an i8).
    Byte,
    /// A string or bytes.
    Binary,
    /// A boolean, whose value is in the field header.
    Bool,
    /// A structure with these fields.
    Struct(&'static str, Fields),
    /// A list of elements of this compact type; of structures when `Fields`.
    List(u8, Option<(&'static str, Fields)>),
}

/// The fields polars reads of a structure, by id; any other id is skipped.
type Fields = &'static [(i16, Field)];

const NO_FIELDS: Fields = &[];
const TIME_UNIT: Fields = &[
    (1, Field::Struct("MilliSeconds", NO_FIELDS)),
    (2, Field::Struct("MicroSeconds", NO_FIELDS)),
    (3, Field::Struct("NanoSeconds", NO_FIELDS)),
];
const TIME_TYPE: Fields = &[(1, Field::Bool), (2, Field::Struct("TimeUnit", TIME_UNIT))];
const LOGICAL_TYPE: Fields = &[
    (1, Field::Struct("StringType", NO_FIELDS)),
    (2, Field::Struct("MapType", NO_FIELDS)),
    (3, Field::Struct("ListType", NO_FIELDS)),
    (4, Field::Struct("EnumType", NO_FIELDS)),
    (5, Field::Struct("DecimalType", &[(1, Field::Int), (2, Field::Int)])),
    (6, Field::Struct("DateType", NO_FIELDS)),
    (7, Field::Struct("TimeType", TIME_TYPE)),
    (8, Field::Struct("TimestampType", TIME_TYPE)),
    (10, Field::Struct("IntType", &[(1, Field::Byte), (2, Field::Bool)])),
    (11, Field::Struct("NullType", NO_FIELDS)),
    (12, Field::Struct("JsonType", NO_FIELDS)),
    (13, Field::Struct("BsonType", NO_FIELDS)),
    (14, Field::Struct("UUIDType", NO_FIELDS)),
    (15, Field::Struct("Float16Type", NO_FIELDS)),
];
const SCHEMA_ELEMENT: Fields = &[
    (1, Field::Int),
    (2, Field::Int),
    (3, Field::Int),
    (4, Field::Binary),
    (5, Field::Int),
    (6, Field::Int),
    (7, Field::Int),
    (8, Field::Int),
    (9, Field::Int),
    (10, Field::Struct("LogicalType", LOGICAL_TYPE)),
];
const STATISTICS: Fields = &[
    (1, Field::Binary),
    (2, Field::Binary),
    (3, Field::Int),
    (4, Field::Int),
    (5, Field::Binary),
    (6, Field::Binary),
    (7, Field::Bool),
    (8, Field::Bool),
];
const COLUMN_META_DATA: Fields = &[
    (1, Field::Int),
    (2, Field::List(I32, None)),
    (3, Field::List(BINARY, None)),
    (4, Field::Int),
    (5, Field::Int),
    (6, Field::Int),
    (7, Field::Int),
    (9, Field::Int),
    (10, Field::Int),
    (11, Field::Int),
    (12, Field::Struct("Statistics", STATISTICS)),
    (14, Field::Int),
    (15, Field::Int),
];
const COLUMN_CHUNK: Fields = &[
    (1, Field::Binary),
    (2, Field::Int),
    (3, Field::Struct("ColumnMetaData", COLUMN_META_DATA)),
    (4, Field::Int),
    (5, Field::Int),
    (6, Field::Int),
    (7, Field::Int),
];
const ROW_GROUP: Fields = &[
    (1, Field::List(STRUCT, Some(("ColumnChunk", COLUMN_CHUNK)))),
    (2, Field::Int),
    (3, Field::Int),
    (4, Field::List(STRUCT, Some(("SortingColumn", &[(1, Field::Int), (2, Field::Bool), (3, Field::Bool)])))),
    (5, Field::Int),
    (6, Field::Int),
    (7, Field::Int),
];
/// The fields of `FileMetaData` that polars-parquet 0.55 reads, and theirs.
const FILE_METADATA: Fields = &[
    (1, Field::Int),
    (2, Field::List(STRUCT, Some(("SchemaElement", SCHEMA_ELEMENT)))),
    (3, Field::Int),
    (4, Field::List(STRUCT, Some(("RowGroup", ROW_GROUP)))),
    (5, Field::List(STRUCT, Some(("KeyValue", &[(1, Field::Binary), (2, Field::Binary)])))),
    (6, Field::Binary),
    (
        7,
        Field::List(
            STRUCT,
            Some((
                "ColumnOrder",
                &[
                    (1, Field::Struct("TypeDefinedOrder", NO_FIELDS)),
                    (2, Field::Struct("IEEE754TotalOrder", NO_FIELDS)),
                ],
            )),
        ),
    ),
];

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

    /// A list's (or set's) element count and element type. Every element
    /// takes at least a byte in a list polars reads, so a count above the
    /// bytes left is refused.
    fn list_header(&mut self) -> Result<(u64, u8), String> {
        let header = self.byte()?;
        let short = u64::from(header >> 4);
        let count = if short == 15 { self.varint()? } else { short };
        if count > self.remaining() as u64 {
            return Err(format!("a list of {count} elements where {} bytes are left", self.remaining()));
        }
        Ok((count, header & 0x0f))
    }

    /// Walk a structure's fields up to its stop byte: those in `known` as
    /// polars reads them, any other skipped by its declared type.
    fn fields(&mut self, name: &str, known: Fields, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("structures nested more than {MAX_DEPTH} deep"));
        }
        let mut id = 0i16;
        loop {
            let header = self.byte()?;
            if header == 0 {
                return Ok(());
            }
            let (step, kind) = (header >> 4, header & 0x0f);
            id = if step == 0 {
                // A full id is a zigzag varint, which polars reads whole and
                // then cuts to an i16: so does this.
                let zigzag = self.varint()?;
                ((zigzag >> 1) as i64 ^ -((zigzag & 1) as i64)) as i16
            } else {
                id.checked_add(i16::from(step)).ok_or("a field id past 32767")?
            };
            let Some(&(_, field)) = known.iter().find(|(known_id, _)| *known_id == id) else {
                self.value(kind, depth + 1)?;
                continue;
            };
            let accepted = match field {
                Field::Int => matches!(kind, I16 | I32 | I64),
                Field::Byte => kind == BYTE,
                Field::Binary => kind == BINARY,
                Field::Bool => matches!(kind, BOOL_TRUE | BOOL_FALSE),
                Field::Struct(..) => kind == STRUCT,
                Field::List(..) => matches!(kind, LIST | SET),
            };
            if !accepted {
                return Err(format!("field {id} of {name} has type {kind}, which the Parquet format does not give it"));
            }
            match field {
                Field::Struct(inner, fields) => self.fields(inner, fields, depth + 1)?,
                Field::List(element, structure) => {
                    let (count, declared) = self.list_header()?;
                    // An empty list may leave its element type 0 (fastparquet).
                    if count > 0 && declared != element {
                        return Err(format!(
                            "field {id} of {name} is a list of type {declared}, which the Parquet format does not give it"
                        ));
                    }
                    for _ in 0..count {
                        match structure {
                            Some((inner, fields)) => self.fields(inner, fields, depth + 1)?,
                            None => self.value(element, depth + 1)?,
                        }
                    }
                }
                _ => self.value(kind, depth + 1)?,
            }
        }
    }

    /// Skip one value of compact type `kind` as polars-parquet 0.55 skips
    /// it (`skip_till_depth`), which is not quite the Thrift specification:
    /// a boolean takes no byte even as a list element, and a set or a map is
    /// an error.
    fn value(&mut self, kind: u8, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("structures nested more than {MAX_DEPTH} deep"));
        }
        match kind {
            BOOL_TRUE | BOOL_FALSE => Ok(()),
            BYTE => self.skip(1),
            I16 | I32 | I64 => self.varint().map(drop),
            DOUBLE => self.skip(8),
            BINARY => {
                let length = self.varint()?;
                self.skip(length)
            }
            LIST => {
                let (count, element) = self.list_header()?;
                for _ in 0..count {
                    self.value(element, depth + 1)?;
                }
                Ok(())
            }
            SET | MAP => Err(format!("a value of type {kind} (a set or map), which a Parquet footer does not hold")),
            STRUCT => self.fields("a structure", &[], depth),
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

    /// The fuzzers' inputs, less their first byte (which picked Parquet):
    /// each footer made polars-parquet reserve over 100 GB and abort.
    #[test]
    fn the_fuzzers_allocation_bombs_are_refused() {
        let err = check(include_bytes!("fixtures/footer-length-bomb.parquet")).expect_err("bomb");
        assert_eq!(
            err,
            "field 2 of FileMetaData has type 6, which the Parquet format does not give it at byte 1 of its footer"
        );
        // `created_by` declared as a list, and later `row_groups` as a string
        // whose bytes polars read as a list header.
        let err = check(include_bytes!("fixtures/footer-type-confusion.parquet")).expect_err("bomb");
        assert_eq!(
            err,
            "field 6 of FileMetaData has type 9, which the Parquet format does not give it at byte 1 of its footer"
        );
        // Empty lists under field id -5, then a list of six booleans under
        // field 54, which polars skips without reading a byte.
        let err = check(include_bytes!("fixtures/footer-bool-list.parquet")).expect_err("bomb");
        assert_eq!(
            err,
            "field 2 of FileMetaData has type 4, which the Parquet format does not give it at byte 39 of its footer"
        );
    }

    #[test]
    fn fields_polars_reads_must_have_their_type() {
        // row_groups as a string.
        let err = check(&file(&[0x48, 0x02, b'a', b'b', 0x00])).expect_err("string");
        assert!(err.contains("field 4 of FileMetaData has type 8"), "{err}");
        // A row group whose column chunk has an integer for its metadata.
        let nested = [0x49, 0x1c, 0x19, 0x1c, 0x35, 0x02, 0x00, 0x00, 0x00];
        let err = check(&file(&nested)).expect_err("nested");
        assert!(err.contains("field 3 of ColumnChunk has type 5"), "{err}");
        // The schema as a list of integers.
        let err = check(&file(&[0x29, 0x15, 0x02, 0x00])).expect_err("list");
        assert!(err.contains("field 2 of FileMetaData is a list of type 5"), "{err}");
        // fastparquet writes an empty list as a bare 0 byte, with no element type.
        assert_eq!(check(&file(&[0x59, 0x00, 0x00])), Ok(()));
    }

    #[test]
    fn the_walk_parts_from_polars_nowhere() {
        // A full field id of 65,540, which polars cuts to 4 (row_groups),
        // holding a string.
        let err = check(&file(&[0x08, 0x88, 0x80, 0x08, 0x02, b'a', b'b', 0x00])).expect_err("wrapped id");
        assert!(err.contains("field 4 of FileMetaData has type 8"), "{err}");
        // Two booleans in a list under unknown field 9 take no bytes, as in
        // polars, so the bytes after them are the next field: row_groups
        // (a full id, 4) as a string.
        let err = check(&file(&[0x99, 0x21, 0x08, 0x08, 0x02, b'a', b'b', 0x00])).expect_err("booleans");
        assert!(err.contains("field 4 of FileMetaData has type 8"), "{err}");
        // Field ids past an i16 end the walk, as polars' do: field 32,760
        // in full, then a step of 15.
        let err = check(&file(&[0x05, 0xf0, 0xff, 0x03, 0x00, 0xf5, 0x00, 0x00])).expect_err("overflow");
        assert!(err.contains("a field id past 32767"), "{err}");
        // A set or a map, which polars cannot skip.
        let err = check(&file(&[0x9a, 0x00, 0x00])).expect_err("set");
        assert!(err.contains("a set or map"), "{err}");
    }

    #[test]
    fn files_without_a_footer_are_left_to_polars() {
        for bytes in [&b""[..], b"PAR1", b"xxxxPAR1", b"PAR1\xff\xff\xff\x7fPAR1", b"not parquet at all"] {
            assert_eq!(check(bytes), Ok(()), "{bytes:?}");
        }
    }
}
