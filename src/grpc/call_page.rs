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
    encoding::{encode_varint, encoded_len_varint, key_len, DecodeContext, WireType},
    DecodeError, Message,
};

use super::convert;
use crate::{
    domain::write_date_time_text,
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
    /// Text rendered on the way (local times).
    text: String,
}

/// A seeded call takes about 240 bytes; pages are sized for it so they rarely grow.
const TYPICAL_CALL_BYTES: usize = 256;

/// The bytes kept for a call's length while it is written: enough below 16 KiB.
const KEPT_LENGTH_BYTES: usize = 2;

const MAX_VARINT_BYTES: usize = 10;

impl PageEncoder {
    pub fn with_capacity(calls: usize) -> Self {
        PageEncoder {
            page: Vec::with_capacity(calls * TYPICAL_CALL_BYTES),
            ..PageEncoder::default()
        }
    }

    /// `ListCallsResponse.calls` (field 1), written in place: its length goes before it, and
    /// most calls need two bytes for it (128 to 16,383 bytes), so two are kept and the call
    /// moves only when its length takes another size.
    pub fn push_call(&mut self, call: &CallView<'_>) {
        put_key(&mut self.page, 1, WireType::LengthDelimited);
        let length_at = self.page.len();
        self.page.extend_from_slice(&[0; KEPT_LENGTH_BYTES]);
        encode_call(call, &mut self.page, &mut self.text);
        let call_len = self.page.len() - length_at - KEPT_LENGTH_BYTES;
        let mut length = [0; MAX_VARINT_BYTES];
        let mut unwritten = &mut length[..];
        encode_varint(call_len as u64, &mut unwritten);
        let length_bytes = MAX_VARINT_BYTES - unwritten.len();
        // In place when the length takes the two bytes kept; else the call moves.
        self.page.splice(
            length_at..length_at + KEPT_LENGTH_BYTES,
            length[..length_bytes].iter().copied(),
        );
    }

    /// Bytes written so far: the calls of the page.
    pub fn encoded_len(&self) -> usize {
        self.page.len()
    }

    /// Adds `next_page_token` (2) and `next_sync_token` (3).
    pub fn finish(mut self, next_page_token: &str, next_sync_token: &str) -> EncodedPage {
        put_str(&mut self.page, 2, next_page_token);
        put_str(&mut self.page, 3, next_sync_token);
        EncodedPage { bytes: self.page }
    }
}

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
/// tombstone carries only its identity and deletion.
fn encode_call(call: &CallView<'_>, buf: &mut Vec<u8>, text: &mut String) {
    let mut id = [0; uuid::fmt::Hyphenated::LENGTH];
    put_str(buf, 1, call.id.as_uuid().hyphenated().encode_lower(&mut id));
    if let Some(delete_time) = call.delete_time {
        put_timestamp(buf, 14, call.update_time);
        put_etag(buf, call.version);
        put_varint(buf, 16, 1);
        put_timestamp(buf, 17, delete_time);
        return;
    }
    put_str(buf, 2, call.button_id);
    put_str(buf, 3, call.client_id);
    put_str(buf, 4, call.caller_number);
    put_str(buf, 5, call.called_number);
    put_str(buf, 6, call.tracking_number);
    // CallStart { date_time = 1, time_zone = 2 }
    text.clear();
    write_date_time_text(&call.start_local, text);
    put_header(
        buf,
        7,
        str_field_len(1, text) + str_field_len(2, call.start_zone),
    );
    put_str(buf, 1, text);
    put_str(buf, 2, call.start_zone);
    // google.protobuf.Duration { seconds = 1, nanos = 2 }
    let seconds = call.duration.as_secs();
    let nanos = u64::from(call.duration.subsec_nanos());
    put_header(
        buf,
        8,
        varint_field_len(1, seconds) + varint_field_len(2, nanos),
    );
    put_varint(buf, 1, seconds);
    put_varint(buf, 2, nanos);
    put_varint(buf, 9, enum_number(convert::status_number(call.status)));
    put_str(buf, 10, call.external_id);
    put_varint(
        buf,
        11,
        enum_number(convert::call_type_number(call.call_type)),
    );
    if !call.record_mime_type.is_empty() || !call.record_url.is_empty() {
        // CallRecord { mime_type = 1, url = 2 }
        put_header(
            buf,
            12,
            str_field_len(1, call.record_mime_type) + str_field_len(2, call.record_url),
        );
        put_str(buf, 1, call.record_mime_type);
        put_str(buf, 2, call.record_url);
    }
    put_timestamp(buf, 13, call.create_time);
    put_timestamp(buf, 14, call.update_time);
    put_etag(buf, call.version);
    put_timestamp(buf, 18, call.start_time);
}

/// `etag` (15): the version, as [`crate::domain::Call::etag`] writes it.
fn put_etag(buf: &mut Vec<u8>, version: i64) {
    // itoa, not `write!`: core::fmt was 2.5% of the server's instructions on a page.
    put_str(buf, 15, itoa::Buffer::new().format(version));
}

/// A google.protobuf.Timestamp { seconds = 1, nanos = 2 }, as [`convert::timestamp`] makes it.
fn put_timestamp(buf: &mut Vec<u8>, tag: u32, time: UnixMicros) {
    let (seconds, nanos) = time.seconds_and_nanos();
    // prost writes int64 and int32 as their two's complement, sign-extended to 64 bits.
    let seconds = seconds as u64;
    let nanos = i64::from(nanos) as u64;
    put_header(
        buf,
        tag,
        varint_field_len(1, seconds) + varint_field_len(2, nanos),
    );
    put_varint(buf, 1, seconds);
    put_varint(buf, 2, nanos);
}

/// Enum numbers are int32 on the wire, sign-extended like any int32.
fn enum_number(number: i32) -> u64 {
    i64::from(number) as u64
}

/// A proto3 string field: absent when empty.
fn put_str(buf: &mut Vec<u8>, tag: u32, value: &str) {
    if !value.is_empty() {
        put_header(buf, tag, value.len());
        buf.extend_from_slice(value.as_bytes());
    }
}

/// The key and length of a length-delimited field whose body follows.
fn put_header(buf: &mut Vec<u8>, tag: u32, len: usize) {
    put_key(buf, tag, WireType::LengthDelimited);
    put_varint_value(buf, len as u64);
}

/// A proto3 varint field (integers, enums, bools): absent when zero.
fn put_varint(buf: &mut Vec<u8>, tag: u32, value: u64) {
    if value != 0 {
        put_key(buf, tag, WireType::Varint);
        put_varint_value(buf, value);
    }
}

fn put_key(buf: &mut Vec<u8>, tag: u32, wire_type: WireType) {
    put_varint_value(buf, u64::from(tag << 3 | wire_type as u32));
}

/// Keys and most lengths take one byte: written inline, where prost's loop was 4% of a page.
#[inline]
fn put_varint_value(buf: &mut Vec<u8>, value: u64) {
    match u8::try_from(value) {
        Ok(byte) if byte < 0x80 => buf.push(byte),
        _ => encode_varint(value, buf),
    }
}

fn str_field_len(tag: u32, value: &str) -> usize {
    match value.len() {
        0 => 0,
        len => key_len(tag) + encoded_len_varint(len as u64) + len,
    }
}

fn varint_field_len(tag: u32, value: u64) -> usize {
    match value {
        0 => 0,
        value => key_len(tag) + encoded_len_varint(value),
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
            start_local: NaiveDate::from_ymd_opt(2026, 3, 29)
                .and_then(|date| date.and_hms_micro_opt(2, 30, 0, 250_000))
                .expect("a valid test date"),
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
        let (mut buf, mut text) = (Vec::new(), String::new());
        encode_call(call, &mut buf, &mut text);
        buf
    }

    #[test]
    fn a_call_is_encoded_as_prost_encodes_its_message() {
        for call in [full_call(), bare_call(), tombstone()] {
            let message = convert::call_to_proto(call.to_call().expect("a valid view"));
            assert_eq!(encoded(&call), message.encode_to_vec(), "{call:?}");
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
