//! ListCalls pages encoded straight from the database rows.
//!
//! Building a `pb::Call` per row meant a dozen heap strings per call, allocated on decoding,
//! moved into the message, encoded and freed: about half of the server's time on a page of 50
//! (BENCHMARKS.md, list). Here each call's protobuf is written from the row's borrowed text.
//! The bytes are those prost writes for [`convert::call_to_proto`] (the tests hold the two
//! together), so clients decode a page as the generated `ListCallsResponse`. A field added to
//! `Call` in call.proto needs a line in [`encode_call`] and a value in the tests' `full_call`.

use prost::{
    bytes::{Buf, BufMut},
    encoding::{encode_key, encode_varint, encoded_len_varint, key_len, DecodeContext, WireType},
    DecodeError, Message,
};

use crate::{
    api::convert,
    pb::calls::v1 as pb,
    service::calls::CallPageSink,
    store::{CallView, UnixMicros},
};

/// A `ListCallsResponse` in its wire form: what the server's ListCalls sends (build.rs).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct EncodedPage {
    bytes: Vec<u8>,
}

impl Message for EncodedPage {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.bytes);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        // Decoded as the generated message and kept in wire form, so nothing is lost.
        let mut page = pb::ListCallsResponse::default();
        page.merge_field(tag, wire_type, buf, ctx)?;
        page.encode_raw(&mut self.bytes);
        Ok(())
    }

    fn encoded_len(&self) -> usize {
        self.bytes.len()
    }

    fn clear(&mut self) {
        self.bytes.clear();
    }
}

/// Writes a page call by call, then its tokens.
#[derive(Debug, Default)]
pub struct PageEncoder {
    page: Vec<u8>,
}

/// A seeded call takes about 240 bytes; pages are sized for it so they rarely grow.
const TYPICAL_CALL_BYTES: usize = 256;

/// The bytes kept for a call's length while it is written: enough below 16 KiB.
const KEPT_LENGTH_BYTES: usize = 2;

/// The most a call takes besides its strings of variable length: keys (two bytes from tag
/// 16 on), varints and lengths (ten bytes at most each), the id (36 bytes) and the local time
/// (32 at most): about 370 bytes, rounded up.
const CALL_FIXED_BYTES_BOUND: usize = 512;

impl PageEncoder {
    pub fn with_capacity(calls: usize) -> Self {
        PageEncoder {
            // And room for the last call's bound (`encode_call`), so that it does not grow.
            page: Vec::with_capacity(calls * TYPICAL_CALL_BYTES + CALL_FIXED_BYTES_BOUND * 2),
        }
    }

    /// `ListCallsResponse.calls` (field 1), written in place: its length goes before it, and
    /// most calls need two bytes for it (128 to 16,383 bytes), so two are kept and the call
    /// moves only when its length takes another size.
    pub fn push_call(&mut self, call: &CallView<'_>) {
        let key_at = self.page.len();
        // The key of field 1 (length-delimited) is one byte.
        self.page.push(1 << 3 | WireType::LengthDelimited as u8);
        self.page.extend_from_slice(&[0; KEPT_LENGTH_BYTES]);
        let call_at = self.page.len();
        encode_call(call, &mut self.page);
        let call_len = self.page.len() - call_at;
        let length_at = key_at + 1;
        match call_len {
            0x80..0x4000 => {
                self.page[length_at] = call_len as u8 | 0x80;
                self.page[length_at + 1] = (call_len >> 7) as u8;
            }
            // A tombstone's length takes one byte: the call moves back by one.
            0..0x80 => {
                self.page[length_at] = call_len as u8;
                self.page.copy_within(call_at.., call_at - 1);
                self.page.pop();
            }
            _ => {
                let mut length = Vec::with_capacity(MAX_VARINT_BYTES);
                encode_varint(call_len as u64, &mut length);
                self.page.splice(length_at..call_at, length);
            }
        }
    }

    /// Bytes written so far: the calls of the page.
    pub fn encoded_len(&self) -> usize {
        self.page.len()
    }

    /// Adds `next_page_token` (2) and `next_sync_token` (3).
    pub fn finish(mut self, next_page_token: &str, next_sync_token: &str) -> EncodedPage {
        for (tag, token) in [(2, next_page_token), (3, next_sync_token)] {
            if !token.is_empty() {
                let mut length = Vec::with_capacity(MAX_VARINT_BYTES + 1);
                encode_key(tag, WireType::LengthDelimited, &mut length);
                encode_varint(token.len() as u64, &mut length);
                self.page.extend_from_slice(&length);
                self.page.extend_from_slice(token.as_bytes());
            }
        }
        EncodedPage { bytes: self.page }
    }
}

const MAX_VARINT_BYTES: usize = 10;

/// The service's listing writes its pages here.
impl CallPageSink for PageEncoder {
    type Page = EncodedPage;

    fn reserve(&mut self, calls: usize) {
        *self = PageEncoder::with_capacity(calls);
    }

    fn push_call(&mut self, call: &CallView<'_>) {
        PageEncoder::push_call(self, call);
    }

    fn encoded_len(&self) -> usize {
        PageEncoder::encoded_len(self)
    }

    fn finish(self, next_page_token: &str, next_sync_token: &str) -> EncodedPage {
        PageEncoder::finish(self, next_page_token, next_sync_token)
    }
}

/// The fields of `pb::Call` in tag order, as [`convert::call_to_proto`] fills them: a
/// tombstone carries only its identity and deletion. Written into bytes the page makes room for
/// beforehand ([`CALL_FIXED_BYTES_BOUND`] and the strings' lengths), then cut to what was
/// written. With a `Vec::push` per byte of keys and varints, each checking the capacity, and
/// prost's varint loop through `BufMut`, writing a page took 92.5k of the server's 482.7k
/// instructions; this way 69.6k (callgrind, BENCHMARKS.md issue 15).
fn encode_call(call: &CallView<'_>, buf: &mut Vec<u8>) {
    let start = buf.len();
    let strings = [
        call.button_id,
        call.client_id,
        call.caller_number,
        call.called_number,
        call.tracking_number,
        call.start_zone,
        call.external_id,
        call.record_mime_type,
        call.record_url,
    ];
    let bound = CALL_FIXED_BYTES_BOUND + strings.iter().map(|text| text.len()).sum::<usize>();
    buf.resize(start + bound, 0);
    let mut out = Writer {
        bytes: &mut buf[start..],
        at: 0,
    };
    out.header(1, uuid::fmt::Hyphenated::LENGTH);
    out.hyphenated_id(call.id.as_uuid().as_bytes());
    if let Some(delete_time) = call.delete_time {
        out.timestamp(14, call.update_time);
        out.etag(call.version);
        out.varint_field(16, 1);
        out.timestamp(17, delete_time);
    } else {
        out.str_field(2, call.button_id);
        out.str_field(3, call.client_id);
        out.str_field(4, call.caller_number);
        out.str_field(5, call.called_number);
        out.str_field(6, call.tracking_number);
        // CallStart { date_time = 1, time_zone = 2 }
        let date_time = call.start_local.text();
        let date_time = date_time.as_bytes();
        out.header(
            7,
            bytes_field_len(1, date_time.len()) + bytes_field_len(2, call.start_zone.len()),
        );
        out.bytes_field(1, date_time);
        out.str_field(2, call.start_zone);
        let nanos = u64::from(call.duration.subsec_nanos());
        out.seconds_and_nanos(8, call.duration.as_secs(), nanos);
        out.varint_field(9, enum_number(convert::status_number(call.status)));
        out.str_field(10, call.external_id);
        out.varint_field(11, enum_number(convert::call_type_number(call.call_type)));
        if !call.record_mime_type.is_empty() || !call.record_url.is_empty() {
            // CallRecord { mime_type = 1, url = 2 }
            out.header(
                12,
                bytes_field_len(1, call.record_mime_type.len())
                    + bytes_field_len(2, call.record_url.len()),
            );
            out.str_field(1, call.record_mime_type);
            out.str_field(2, call.record_url);
        }
        out.timestamp(13, call.create_time);
        out.timestamp(14, call.update_time);
        out.etag(call.version);
        out.timestamp(18, call.start_time);
    }
    let written = out.at;
    buf.truncate(start + written);
}

/// Writes into bytes already in the buffer, sized beforehand: each write checks one index
/// (which cannot fail within the bound) instead of the vector's length and capacity. Its
/// helpers are `#[inline(always)]`: when `bytes_field` went out of line, a page took 1.3k
/// instructions more than before the two-byte writes below (BENCHMARKS.md issue 15).
struct Writer<'a> {
    bytes: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    /// Into a window of the ten bytes a varint may take (the bound counts ten for each), so
    /// that the index is checked once, not at each byte. (Written as one eight-byte store of
    /// its seven-bit groups instead, a page took barely fewer instructions, 8.2k against 8.9k,
    /// for less obvious code.)
    #[inline(always)]
    fn varint(&mut self, mut value: u64) {
        let window = &mut self.bytes[self.at..self.at + MAX_VARINT_BYTES];
        let mut written = 0;
        for byte in window {
            written += 1;
            if value < 0x80 {
                *byte = value as u8;
                break;
            }
            *byte = value as u8 | 0x80;
            value >>= 7;
        }
        self.at += written;
    }

    /// A field's key: one byte for tags 1 to 15.
    #[inline(always)]
    fn key(&mut self, tag: u32, wire_type: WireType) {
        let key = tag << 3 | wire_type as u32;
        if tag < 16 {
            self.bytes[self.at] = key as u8;
            self.at += 1;
        } else {
            self.varint(u64::from(key));
        }
    }

    /// A key of one byte (tags 1 to 15) and a value below 128, in one write: most of a call's
    /// keys and lengths. Byte by byte, with the varints, they took 23.9k instructions of a
    /// page; with this and the window above 11.8k (callgrind, BENCHMARKS.md issue 15).
    #[inline(always)]
    fn key_and_small_varint(&mut self, tag: u32, wire_type: WireType, value: u64) -> bool {
        let fits = tag < 16 && value < 0x80;
        if fits {
            let key = (tag << 3 | wire_type as u32) as u8;
            self.bytes[self.at..self.at + 2].copy_from_slice(&[key, value as u8]);
            self.at += 2;
        }
        fits
    }

    /// The key and length of a length-delimited field whose body follows.
    #[inline(always)]
    fn header(&mut self, tag: u32, len: usize) {
        if !self.key_and_small_varint(tag, WireType::LengthDelimited, len as u64) {
            self.key(tag, WireType::LengthDelimited);
            self.varint(len as u64);
        }
    }

    /// A proto3 string or bytes field: absent when empty.
    #[inline(always)]
    fn bytes_field(&mut self, tag: u32, value: &[u8]) {
        if !value.is_empty() {
            self.header(tag, value.len());
            self.bytes[self.at..self.at + value.len()].copy_from_slice(value);
            self.at += value.len();
        }
    }

    #[inline(always)]
    fn str_field(&mut self, tag: u32, value: &str) {
        self.bytes_field(tag, value.as_bytes());
    }

    /// A proto3 varint field (integers, enums, bools): absent when zero.
    #[inline(always)]
    fn varint_field(&mut self, tag: u32, value: u64) {
        if value != 0 && !self.key_and_small_varint(tag, WireType::Varint, value) {
            self.key(tag, WireType::Varint);
            self.varint(value);
        }
    }

    /// A google.protobuf.Timestamp or Duration: { seconds = 1, nanos = 2 }, both varints, so
    /// 22 bytes at most. Its length takes one byte, filled in once the fields are written
    /// rather than worked out before them.
    #[inline(always)]
    fn seconds_and_nanos(&mut self, tag: u32, seconds: u64, nanos: u64) {
        self.key(tag, WireType::LengthDelimited);
        let length_at = self.at;
        self.at += 1;
        self.varint_field(1, seconds);
        self.varint_field(2, nanos);
        self.bytes[length_at] = (self.at - length_at - 1) as u8;
    }

    /// A google.protobuf.Timestamp, as [`convert::timestamp`] makes it.
    #[inline(always)]
    fn timestamp(&mut self, tag: u32, time: UnixMicros) {
        let (seconds, nanos) = time.seconds_and_nanos();
        // prost writes int64 and int32 as their two's complement, sign-extended to 64 bits.
        self.seconds_and_nanos(tag, seconds as u64, i64::from(nanos) as u64);
    }

    /// The id as [`uuid::fmt::Hyphenated`] writes it in lower case (8-4-4-4-12 hex digits),
    /// one table lookup a byte. uuid's `encode_lower` writes the digits nibble by nibble, then
    /// moves them twice: 5.0k instructions of a page of 50 calls, against 1.1k this way
    /// (callgrind, BENCHMARKS.md issue 15).
    #[inline(always)]
    fn hyphenated_id(&mut self, id: &[u8; 16]) {
        let text = &mut self.bytes[self.at..self.at + uuid::fmt::Hyphenated::LENGTH];
        let mut at = 0;
        for (index, &byte) in id.iter().enumerate() {
            if matches!(index, 4 | 6 | 8 | 10) {
                text[at] = b'-';
                at += 1;
            }
            text[at..at + 2].copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
            at += 2;
        }
        self.at += uuid::fmt::Hyphenated::LENGTH;
    }

    /// `etag` (15): the version, as [`crate::domain::Call::etag`] writes it.
    #[inline(always)]
    fn etag(&mut self, version: i64) {
        // itoa, not `write!`: core::fmt was 2.5% of the server's instructions on a page.
        self.str_field(15, itoa::Buffer::new().format(version));
    }
}

/// Each byte's two lower-case hex digits.
static HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        pairs[byte] = [DIGITS[byte >> 4], DIGITS[byte & 0xf]];
        byte += 1;
    }
    pairs
};

/// Enum numbers are int32 on the wire, sign-extended like any int32.
fn enum_number(number: i32) -> u64 {
    i64::from(number) as u64
}

fn bytes_field_len(tag: u32, len: usize) -> usize {
    match len {
        0 => 0,
        len => key_len(tag) + encoded_len_varint(len as u64) + len,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::NaiveDate;

    use super::*;
    use crate::{
        domain::Position,
        domain::{CallStatus, CallType},
        store::LocalMicros,
    };

    /// Longer than 127 bytes: its length takes two varint bytes.
    const LONG_URL: &str = "https://records.example/tenants/0190aaaa-bbbb-7ccc-8ddd-eeeeffff0000/\
        calls/0190aaaa-bbbb-7ccc-8ddd-eeeeffff0001/recordings/first-attempt.mp3";

    fn instant(seconds: i64, micros: i64) -> UnixMicros {
        UnixMicros(seconds * 1_000_000 + micros)
    }

    fn full_call() -> CallView<'static> {
        CallView {
            id: crate::domain::CallId::new_v7(),
            button_id: "button-7",
            client_id: "client «é»",
            caller_number: "+33 6 12 34 56 78",
            called_number: "06-12-34-56-78",
            tracking_number: "+1 (212) 555-0100",
            start_local: LocalMicros::of(
                NaiveDate::from_ymd_opt(2026, 3, 29)
                    .and_then(|date| date.and_hms_micro_opt(2, 30, 0, 250_000))
                    .expect("a valid test date"),
            ),
            start_zone: "America/New_York",
            start_time: instant(1_774_765_800, 250_000),
            duration: Duration::from_micros(95_000_001),
            status: Some(CallStatus::Abandoned),
            external_id: "ext-1",
            call_type: Some(CallType::CallTracking),
            record_mime_type: "audio/mpeg",
            record_url: LONG_URL,
            version: 12_345_678_901,
            create_time: instant(1_774_765_900, 1),
            update_time: instant(1_774_766_000, 0),
            delete_time: None,
            position: Position { tx: 1, seq: 2 },
        }
    }

    fn bare_call() -> CallView<'static> {
        CallView {
            tracking_number: "",
            duration: Duration::ZERO,
            status: None,
            external_id: "",
            call_type: None,
            record_mime_type: "",
            record_url: "",
            version: 1,
            // Before 1970: negative seconds are ten-byte varints, and the fraction still
            // counts forwards from the second.
            start_time: instant(-86_400, 500_000),
            ..full_call()
        }
    }

    fn tombstone() -> CallView<'static> {
        CallView {
            delete_time: Some(instant(1_774_766_100, 5)),
            ..full_call()
        }
    }

    fn encoded(call: &CallView<'_>) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_call(call, &mut buf);
        buf
    }

    #[test]
    fn a_call_is_encoded_as_prost_encodes_its_message() {
        for call in [full_call(), bare_call(), tombstone()] {
            let message = convert::call_to_proto(call.to_call().expect("a valid view"));
            assert_eq!(encoded(&call), message.encode_to_vec(), "{call:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        /// Every length of varint, from one byte to ten.
        #[test]
        fn a_varint_is_written_as_prost_writes_it(value in proptest::prelude::any::<u64>(), shift in 0_u32..64) {
            let value = value >> shift;
            let mut bytes = [0xff; 2 * MAX_VARINT_BYTES];
            let mut out = Writer { bytes: &mut bytes, at: 0 };
            out.varint(value);
            let written = out.at;
            let mut expected = Vec::new();
            encode_varint(value, &mut expected);
            proptest::prop_assert_eq!(&bytes[..written], expected.as_slice());
        }

        #[test]
        fn an_id_is_written_as_uuid_writes_it(id in proptest::prelude::any::<[u8; 16]>()) {
            let mut bytes = [0; uuid::fmt::Hyphenated::LENGTH];
            let mut out = Writer { bytes: &mut bytes, at: 0 };
            out.hyphenated_id(&id);
            let expected = uuid::Uuid::from_bytes(id).hyphenated().to_string();
            proptest::prop_assert_eq!(std::str::from_utf8(&bytes), Ok(expected.as_str()));
        }

        /// Times and durations at their extremes: seconds of ten bytes, nanos of none.
        #[test]
        fn any_time_and_duration_are_encoded_as_prost_encodes_them(
            micros in -8_000_000_000_000_000_000_i64..8_000_000_000_000_000_000,
            duration_micros in proptest::prelude::any::<u64>(),
        ) {
            let call = CallView {
                start_time: UnixMicros(micros),
                create_time: UnixMicros(micros / 7),
                duration: Duration::from_micros(duration_micros),
                ..full_call()
            };
            let message = convert::call_to_proto(call.to_call().expect("a valid view"));
            proptest::prop_assert_eq!(encoded(&call), message.encode_to_vec());
        }
    }

    #[test]
    fn a_page_decodes_as_the_generated_response() {
        // Lengths of one (tombstone), two (full, bare) and three bytes (past 16 KiB).
        let long_url = format!("https://records.example/{}", "x".repeat(20_000));
        let huge_call = CallView {
            record_url: &long_url,
            ..full_call()
        };
        let calls = [full_call(), tombstone(), bare_call(), huge_call];
        let mut encoder = PageEncoder::default();
        for call in &calls {
            encoder.push_call(call);
        }
        let page = encoder.finish("next-page", "");
        let decoded = pb::ListCallsResponse::decode(page.encode_to_vec().as_slice())
            .expect("the page decodes");
        let expected = pb::ListCallsResponse {
            calls: calls
                .iter()
                .map(|call| convert::call_to_proto(call.to_call().expect("a valid view")))
                .collect(),
            next_page_token: "next-page".to_owned(),
            next_sync_token: String::new(),
        };
        assert_eq!(decoded, expected);
        // And back: a page decoded as an EncodedPage keeps its bytes.
        let again = EncodedPage::decode(page.encode_to_vec().as_slice()).expect("decodes");
        assert_eq!(again, page);
    }
}
