//! A call's columns read from the bytes PostgreSQL sent (binary format), their types checked
//! once per statement instead of once per value.
//!
//! Through postgres-types, each value of a page of 50 calls went through a generic `try_get`
//! that looked its column up, checked its type and converted it: with UTF-8 validation of the
//! text, 29% of the server's instructions on a ListCalls page (callgrind, BENCHMARKS.md issue
//! 15). The floor reads its columns the same raw way.

use tokio_postgres::{
    types::{FromSql, Type},
    Column, Row,
};
use uuid::Uuid;

use super::call_rows::{LocalMicros, UnixMicros};
use crate::Error;

/// The wire types of a call's columns, in the order of `CALL_COLUMNS`.
const CALL_COLUMN_TYPES: [WireType; 21] = {
    use WireType::*;
    [
        Uuid, Text, Text, Text, Text, Text, Timestamp, Text, Timestamp, Int8, Int2, Text, Int2,
        Text, Text, Int8, Timestamp, Timestamp, Timestamp, Int8, Int8,
    ]
};

#[derive(Debug, Clone, Copy)]
enum WireType {
    Uuid,
    Text,
    /// `timestamp` or `timestamptz`: both are microseconds since 2000-01-01.
    Timestamp,
    Int8,
    Int2,
}

impl WireType {
    fn accepts(self, ty: &Type) -> bool {
        match self {
            WireType::Uuid => *ty == Type::UUID,
            WireType::Text => matches!(*ty, Type::TEXT | Type::VARCHAR),
            WireType::Timestamp => matches!(*ty, Type::TIMESTAMP | Type::TIMESTAMPTZ),
            WireType::Int8 => *ty == Type::INT8,
            WireType::Int2 => *ty == Type::INT2,
        }
    }
}

/// Whether `columns` hold a call's columns from `first` on, with the types [`CallColumns`]
/// reads them as. Rows of one statement share its columns: one check covers them all.
pub(super) fn check_call_columns(columns: &[Column], first: usize) -> Result<(), Error> {
    let call_columns = columns.get(first..first + CALL_COLUMN_TYPES.len());
    let Some(call_columns) = call_columns else {
        return Err(Error::Internal(anyhow::anyhow!(
            "a call's columns start at {first} of {}",
            columns.len()
        )));
    };
    for (column, wire_type) in call_columns.iter().zip(CALL_COLUMN_TYPES) {
        if !wire_type.accepts(column.type_()) {
            return Err(Error::Internal(anyhow::anyhow!(
                "column {} is {}, not read as {wire_type:?}",
                column.name(),
                column.type_()
            )));
        }
    }
    Ok(())
}

/// The call columns of a row whose types [`check_call_columns`] accepted. Reading a column as
/// another type than the checked one gives a wrong value or an error, never undefined behaviour:
/// every value's length is checked. The readers are inlined into [`super::CallView::read`]: as
/// calls, with their results written to memory, they were a fifth of reading a page.
#[derive(Clone, Copy)]
pub(super) struct CallColumns<'r, 'a> {
    row: &'a Row,
    first: usize,
    raw: &'r RawCallColumns<'a>,
}

/// How many columns a call is read from.
pub(super) const CALL_COLUMN_COUNT: usize = CALL_COLUMN_TYPES.len();

/// A call's columns as [`read_raw_columns`] found them: each value's bytes, `None` for NULL.
pub(super) type RawCallColumns<'a> = [Option<&'a [u8]>; CALL_COLUMN_COUNT];

/// Every call column's bytes from column `first` on, in one loop: tokio-postgres' `try_get`
/// then has one call site, and the optimiser inlines it there. Called once per column, it
/// stayed out of line: 39k instructions of a page of 50 calls, about 24k in this loop (callgrind,
/// BENCHMARKS.md issue 15). Not inlined itself, so that the loop is not unrolled back into 21
/// calls.
#[inline(never)]
pub(super) fn read_raw_columns<'a>(
    row: &'a Row,
    first: usize,
    raw: &mut RawCallColumns<'a>,
) -> Result<(), Error> {
    for (slot, index) in raw.iter_mut().zip(first..row.len()) {
        *slot = row.try_get::<_, RawColumn>(index)?.0;
    }
    Ok(())
}

impl<'r, 'a> CallColumns<'r, 'a> {
    pub(super) fn new(row: &'a Row, first: usize, raw: &'r RawCallColumns<'a>) -> Self {
        CallColumns { row, first, raw }
    }

    /// The value's bytes; `None` for NULL.
    #[inline(always)]
    fn nullable(self, offset: usize) -> Result<Option<&'a [u8]>, Error> {
        Ok(self.raw[offset])
    }

    #[inline(always)]
    fn bytes(self, offset: usize) -> Result<&'a [u8], Error> {
        self.nullable(offset)?
            .ok_or_else(|| self.error(offset, "is NULL"))
    }

    #[inline(always)]
    fn fixed<const N: usize>(self, offset: usize, raw: &[u8]) -> Result<[u8; N], Error> {
        raw.try_into()
            .map_err(|_| self.error(offset, "has the wrong length"))
    }

    #[inline(always)]
    pub(super) fn uuid(self, offset: usize) -> Result<Uuid, Error> {
        Ok(Uuid::from_bytes(self.fixed(offset, self.bytes(offset)?)?))
    }

    #[inline(always)]
    pub(super) fn text(self, offset: usize) -> Result<&'a str, Error> {
        let raw = self.bytes(offset)?;
        // Stored text is nearly always ASCII (numbers, ids, zone names, URLs), which a
        // word-at-a-time scan confirms; `from_utf8` checks short values byte by byte, and was
        // 9% of the server's instructions on a page of 50 (callgrind, BENCHMARKS.md issue 15).
        if raw.is_ascii() {
            // SAFETY: every byte is below 0x80, and a sequence of ASCII bytes is valid UTF-8.
            return Ok(unsafe { std::str::from_utf8_unchecked(raw) });
        }
        std::str::from_utf8(raw).map_err(|_| self.error(offset, "is not UTF-8"))
    }

    #[inline(always)]
    pub(super) fn int8(self, offset: usize) -> Result<i64, Error> {
        Ok(i64::from_be_bytes(self.fixed(offset, self.bytes(offset)?)?))
    }

    #[inline(always)]
    pub(super) fn int2(self, offset: usize) -> Result<i16, Error> {
        Ok(i16::from_be_bytes(self.fixed(offset, self.bytes(offset)?)?))
    }

    #[inline(always)]
    pub(super) fn timestamp(self, offset: usize) -> Result<PgTimestamp, Error> {
        self.int8(offset).map(PgTimestamp)
    }

    #[inline(always)]
    pub(super) fn nullable_timestamp(self, offset: usize) -> Result<Option<PgTimestamp>, Error> {
        match self.nullable(offset)? {
            Some(raw) => Ok(Some(PgTimestamp(i64::from_be_bytes(
                self.fixed(offset, raw)?,
            )))),
            None => Ok(None),
        }
    }

    #[cold]
    #[inline(never)]
    fn error(self, offset: usize, problem: &str) -> Error {
        let index = self.first + offset;
        let name = self
            .row
            .columns()
            .get(index)
            .map_or("?", |column| column.name());
        Error::Internal(anyhow::anyhow!("stored call column {name} {problem}"))
    }
}

/// A value's bytes as PostgreSQL sent them, whatever its type: [`check_call_columns`] checked
/// the types.
struct RawColumn<'a>(Option<&'a [u8]>);

impl<'a> FromSql<'a> for RawColumn<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawColumn(Some(raw)))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawColumn(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A `timestamp` or `timestamptz` as PostgreSQL sends it: microseconds since 2000-01-01.
pub(super) struct PgTimestamp(i64);

/// 2000-01-01T00:00:00Z in microseconds since 1970-01-01T00:00:00Z.
const POSTGRES_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

impl PgTimestamp {
    /// The instant, moved to the Unix epoch by one addition (postgres-types adds the
    /// microseconds to a calendar date instead).
    pub(super) fn instant(self) -> Result<UnixMicros, Error> {
        self.0
            .checked_add(POSTGRES_EPOCH_UNIX_MICROS)
            .map(UnixMicros)
            .ok_or_else(|| {
                Error::Internal(anyhow::anyhow!("stored time {} is out of range", self.0))
            })
    }

    /// A `timestamp` (no zone): the wall-clock time it holds, moved to the Unix epoch alike.
    pub(super) fn local(self) -> Result<LocalMicros, Error> {
        Ok(LocalMicros(self.instant()?.0))
    }
}
