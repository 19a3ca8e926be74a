//! `ExecuteResponse` as it goes on the wire: the row is encoded to protobuf
//! bytes once, when it is built, instead of being collected into a
//! `map<string, Column>` (a hash map with an owned key per cell) that prost
//! would then measure and encode again.
//!
//! `build.rs` maps `.proto.ExecuteResponse` to this type, so the generated
//! service streams it as is. Its encoding is byte-compatible with the
//! contract's message (`Row row = 1; QueryMetadata metadata = 2;
//! string connection = 3;`): field 1 carries the encoded `Row`, which is what a
//! length-delimited embedded message is. A cached row is a reference-counted
//! clone of the same bytes.

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes};
use prost::encoding::{
    encode_key, encode_varint, encoded_len_varint, key_len, skip_field, DecodeContext, WireType,
};
use prost::{DecodeError, Message};

use crate::pb::steampipe as pb;

/// One streamed row (or, in tests of the contract, a row-less answer).
#[derive(Clone, PartialEq)]
pub struct ExecuteResponse {
    /// the encoded `Row` message (its fields, without a length prefix)
    pub row: Bytes,
    /// whether field 1 is present at all (a `Row`, even an empty one)
    pub has_row: bool,
    /// `QueryMetadata`: the scan's counters when the row was sent (see
    /// [`crate::plugin::metadata`])
    pub metadata: Option<pb::QueryMetadata>,
    /// the connection the row belongs to
    pub connection: Arc<str>,
}

impl Default for ExecuteResponse {
    fn default() -> Self {
        ExecuteResponse {
            row: Bytes::new(),
            has_row: false,
            metadata: None,
            connection: Arc::from(""),
        }
    }
}

impl std::fmt::Debug for ExecuteResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecuteResponse")
            .field("row_bytes", &self.row.len())
            .field("connection", &self.connection)
            .finish()
    }
}

impl ExecuteResponse {
    /// The row decoded into the generated `Row` type (for in-process readers).
    pub fn decode_row(&self) -> Result<Option<pb::Row>, DecodeError> {
        if !self.has_row {
            return Ok(None);
        }
        pb::Row::decode(self.row.clone()).map(Some)
    }
}

impl Message for ExecuteResponse {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        if self.has_row {
            encode_key(1, WireType::LengthDelimited, buf);
            encode_varint(self.row.len() as u64, buf);
            buf.put_slice(&self.row);
        }
        if let Some(m) = &self.metadata {
            prost::encoding::message::encode(2, m, buf);
        }
        if !self.connection.is_empty() {
            encode_key(3, WireType::LengthDelimited, buf);
            encode_varint(self.connection.len() as u64, buf);
            buf.put_slice(self.connection.as_bytes());
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        match tag {
            1 => {
                // Repeated occurrences of an embedded message merge: append.
                let mut part = Bytes::new();
                prost::encoding::bytes::merge(wire_type, &mut part, buf, ctx)?;
                if self.has_row && !self.row.is_empty() {
                    let mut joined = Vec::with_capacity(self.row.len() + part.len());
                    joined.extend_from_slice(&self.row);
                    joined.extend_from_slice(&part);
                    self.row = Bytes::from(joined);
                } else {
                    self.row = part;
                }
                self.has_row = true;
                Ok(())
            }
            2 => prost::encoding::message::merge(
                wire_type,
                self.metadata.get_or_insert_with(Default::default),
                buf,
                ctx,
            ),
            3 => {
                let mut s = String::new();
                prost::encoding::string::merge(wire_type, &mut s, buf, ctx)?;
                self.connection = Arc::from(s);
                Ok(())
            }
            _ => skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        let mut n = 0;
        if self.has_row {
            n += key_len(1) + encoded_len_varint(self.row.len() as u64) + self.row.len();
        }
        if let Some(m) = &self.metadata {
            n += prost::encoding::message::encoded_len(2, m);
        }
        if !self.connection.is_empty() {
            n += key_len(3)
                + encoded_len_varint(self.connection.len() as u64)
                + self.connection.len();
        }
        n
    }

    fn clear(&mut self) {
        *self = ExecuteResponse::default();
    }
}

/// Writes the entries of a `Row` (`map<string, Column> columns = 1`) one cell
/// at a time.
#[derive(Default)]
pub struct RowEncoder {
    buf: Vec<u8>,
}

impl RowEncoder {
    /// An encoder with room for about `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        RowEncoder {
            buf: Vec::with_capacity(capacity),
        }
    }

    /// Appends the map entry `name -> column`.
    pub fn cell(&mut self, name: &str, column: &pb::Column) {
        let value_len = column.encoded_len();
        let entry_len = key_len(1)
            + encoded_len_varint(name.len() as u64)
            + name.len()
            + key_len(2)
            + encoded_len_varint(value_len as u64)
            + value_len;
        let buf = &mut self.buf;
        encode_key(1, WireType::LengthDelimited, buf);
        encode_varint(entry_len as u64, buf);
        encode_key(1, WireType::LengthDelimited, buf);
        encode_varint(name.len() as u64, buf);
        buf.put_slice(name.as_bytes());
        encode_key(2, WireType::LengthDelimited, buf);
        encode_varint(value_len as u64, buf);
        column.encode_raw(buf);
    }

    /// Appends entries already encoded by another `RowEncoder`.
    pub fn raw(&mut self, encoded: &[u8]) {
        self.buf.extend_from_slice(encoded);
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The encoded row.
    pub fn finish(self) -> Bytes {
        Bytes::from(self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::column::Value as Cell;
    use prost::encoding::decode_varint;

    /// Counts the map entries of an encoded `Row` without decoding the cells.
    fn cell_count(mut row: &[u8]) -> Result<usize, String> {
        let mut n = 0;
        while row.has_remaining() {
            let key = decode_varint(&mut row).map_err(|e| e.to_string())?;
            if key != ((1 << 3) | WireType::LengthDelimited as u64) {
                return Err("a Row field other than columns".into());
            }
            let len = decode_varint(&mut row).map_err(|e| e.to_string())? as usize;
            if len > row.len() {
                return Err("a Row map entry runs past the end".into());
            }
            row.advance(len);
            n += 1;
        }
        Ok(n)
    }

    fn col(v: Cell) -> pb::Column {
        pb::Column { value: Some(v) }
    }

    #[test]
    fn a_row_written_cell_by_cell_decodes_as_the_contracts_row() {
        let cells = [
            ("instance_id", col(Cell::StringValue("i-1".into()))),
            (
                "metadata_options",
                col(Cell::JsonValue(br#"{"a":1}"#.to_vec())),
            ),
            ("n", col(Cell::IntValue(-5))),
            ("d", col(Cell::DoubleValue(1.5))),
            ("b", col(Cell::BoolValue(false))),
            ("z", col(Cell::NullValue(0))),
            ("empty", col(Cell::StringValue(String::new()))),
            ("", col(Cell::StringValue("empty key".into()))),
        ];
        let mut enc = RowEncoder::default();
        for (name, c) in &cells[..4] {
            enc.cell(name, c);
        }
        let mut tail = RowEncoder::default();
        for (name, c) in &cells[4..] {
            tail.cell(name, c);
        }
        enc.raw(tail.as_bytes());
        let resp = ExecuteResponse {
            row: enc.finish(),
            has_row: true,
            metadata: None,
            connection: Arc::from("aws_prod"),
        };
        assert_eq!(cell_count(&resp.row).unwrap(), cells.len());
        let bytes = resp.encode_to_vec();
        assert_eq!(bytes.len(), resp.encoded_len());

        // The contract's message, built the ordinary way, encodes to a
        // message that decodes to the same thing, and ours decodes back.
        let row = pb::Row {
            columns: cells
                .iter()
                .map(|(n, c)| (n.to_string(), c.clone()))
                .collect(),
        };
        let back = ExecuteResponse::decode(bytes.as_slice()).unwrap();
        assert_eq!(back.connection.as_ref(), "aws_prod");
        assert_eq!(back.decode_row().unwrap(), Some(row.clone()));
        assert_eq!(back, resp);

        // An ordinary prost encoding of field 1 and 3 decodes into our type too.
        let mut std = Vec::new();
        prost::encoding::message::encode(1, &row, &mut std);
        prost::encoding::string::encode(3, &"c".to_string(), &mut std);
        let theirs = ExecuteResponse::decode(std.as_slice()).unwrap();
        assert_eq!(theirs.decode_row().unwrap(), Some(row));
        assert_eq!(theirs.connection.as_ref(), "c");
    }

    #[test]
    fn absent_fields_stay_absent() {
        let none = ExecuteResponse::default();
        assert!(none.encode_to_vec().is_empty());
        assert_eq!(none.decode_row().unwrap(), None);
        let empty_row = ExecuteResponse {
            has_row: true,
            ..Default::default()
        };
        assert_eq!(empty_row.encode_to_vec(), vec![0x0a, 0x00]);
        assert_eq!(
            ExecuteResponse::decode(&[0x0a, 0x00][..])
                .unwrap()
                .decode_row()
                .unwrap(),
            Some(pb::Row::default())
        );
    }

    #[test]
    fn malformed_rows_are_errors_not_panics() {
        assert!(cell_count(&[0x0a, 0x05, 0x01]).is_err());
        assert!(cell_count(&[0x12, 0x00]).is_err());
        assert!(ExecuteResponse::decode(&[0x0a, 0x05, 0x01][..]).is_err());
    }
}
