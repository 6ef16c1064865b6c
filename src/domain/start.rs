//! The start of a call: a local wall-clock time read in an IANA time zone.
//!
//! The seed gives `start.dateTime` *without* an offset and the zone apart. We store the local
//! time, the zone and the instant they denote. A local time skipped by a DST change does not
//! exist and is refused; one repeated by a DST change is ambiguous and takes the earlier
//! instant (the first time the clock showed it).

use std::str::FromStr;

use chrono::{DateTime, Datelike, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::{error::quote, Error};

/// A validated call start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallStart {
    pub local: NaiveDateTime,
    pub zone: Tz,
}

impl CallStart {
    /// Parses `date_time` (RFC 3339 without offset) in `time_zone`, or in `default_zone` when
    /// `time_zone` is empty. `field` is the path of the start message, e.g. `call.start`.
    pub fn parse(
        field: &str,
        date_time: &str,
        time_zone: &str,
        default_zone: Tz,
    ) -> Result<Self, Error> {
        let date_time_field = format!("{field}.date_time");
        let zone = if time_zone.is_empty() {
            default_zone
        } else {
            parse_time_zone(&format!("{field}.time_zone"), time_zone)?
        };
        let local = parse_local_date_time(&date_time_field, date_time)?;
        let start = CallStart { local, zone };
        start
            .instant()
            .map_err(|description| Error::invalid(date_time_field, description))?;
        Ok(start)
    }

    /// The instant this local time denotes in its zone, within what a
    /// `google.protobuf.Timestamp` can carry.
    pub fn instant(&self) -> Result<DateTime<Utc>, String> {
        let instant = match self.zone.from_local_datetime(&self.local) {
            LocalResult::Single(instant) => instant.with_timezone(&Utc),
            // Both instants are real; the earlier is the first time the wall clock read this.
            LocalResult::Ambiguous(earlier, _later) => earlier.with_timezone(&Utc),
            LocalResult::None => {
                return Err(format!(
                    "{} does not exist in {}: the clocks skip it (daylight saving time)",
                    self.local.format("%Y-%m-%dT%H:%M:%S"),
                    self.zone.name()
                ))
            }
        };
        // 0001-01-01T00:00:00 in Paris is 0000-12-31T23:50:39Z: no client could read it back,
        // and PostgreSQL writes it as a BC date that nothing downstream parses.
        if !is_timestamp(instant) {
            return Err(format!(
                "is {} in {}, outside what a timestamp can carry \
                 (0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z)",
                instant.format("%Y-%m-%dT%H:%M:%SZ"),
                self.zone.name()
            ));
        }
        Ok(instant)
    }

    /// The local time as the seed writes it (see [`write_date_time_text`]).
    pub fn date_time_text(&self) -> String {
        let mut text = String::with_capacity(29);
        write_date_time_text(&self.local, &mut text);
        text
    }
}

/// Writes a local time as the seed does: `2026-11-27T09:30:00`, fractions when present (3, 6
/// or 9 digits, as chrono's `%.f`). See [`DateTimeText`].
pub fn write_date_time_text(local: &NaiveDateTime, text: &mut String) {
    let date_time = DateTimeText::new(local);
    text.extend(date_time.as_bytes().iter().copied().map(char::from));
}

/// A local time's text (see [`write_date_time_text`]) in ASCII bytes on the stack: a page of
/// calls writes it straight into its buffer. Digit by digit: chrono's format strings, then
/// `write!`, then a `String::push` per character were each a visible share of the server's
/// instructions on a page of calls (the last 2.9%: callgrind, BENCHMARKS.md issue 15).
#[derive(Debug, Clone, Copy)]
pub struct DateTimeText {
    /// The longest: a year of chrono's range with its sign, `+262143`, 15 bytes of month to
    /// second and 10 of fraction.
    bytes: [u8; 32],
    len: usize,
}

impl DateTimeText {
    pub fn new(local: &NaiveDateTime) -> Self {
        let (date, time) = (local.date(), local.time());
        // chrono keeps a leap second as nanoseconds past 1e9 in second 59.
        let (second, nanos) = match time.nanosecond() {
            nanos if nanos >= 1_000_000_000 => (60, nanos - 1_000_000_000),
            nanos => (time.second(), nanos),
        };
        Self::from_fields(
            date.year(),
            [date.month(), date.day(), time.hour(), time.minute(), second],
            nanos,
        )
    }

    /// A wall-clock time held as microseconds since 1970-01-01T00:00:00, as PostgreSQL's
    /// `timestamp` is once moved to the Unix epoch. The date comes from the day number by
    /// integer arithmetic (the civil calendar's 400-year eras), not through chrono's
    /// `NaiveDateTime`: through its conversion and field accessors the text took 8.6k
    /// instructions of a page of 50 calls besides the conversion, this way 7.5k in all
    /// (callgrind, BENCHMARKS.md issue 15).
    pub fn from_unix_micros(micros: i64) -> Self {
        let days = micros.div_euclid(MICROS_PER_DAY);
        // Below 86,400 s and 1e6 µs: they fit.
        let of_day = micros.rem_euclid(MICROS_PER_DAY) as u64;
        let seconds = (of_day / MICROS_PER_SECOND as u64) as u32;
        let fraction_micros = (of_day % MICROS_PER_SECOND as u64) as u32;
        let (year, month, day) = civil_date(days);
        let fields = [month, day, seconds / 3600, seconds / 60 % 60, seconds % 60];
        match u32::try_from(year) {
            Ok(year) if year <= 9999 => Self::four_digit_year(year, fields, fraction_micros),
            // i64 microseconds span 292,277 years on either side: the year fits.
            _ => Self::from_fields(year as i32, fields, fraction_micros * 1_000),
        }
    }

    /// Every call's case, at fixed places: `YYYY-MM-DDTHH:MM:SS`, then `.mmm` or `.uuuuuu`
    /// when the fraction has them, as [`Self::from_fields`] writes it (the tests compare).
    fn four_digit_year(year: u32, fields: [u32; 5], fraction_micros: u32) -> Self {
        let mut bytes = [0; 32];
        bytes[..19].copy_from_slice(b"0000-00-00T00:00:00");
        bytes[0..2].copy_from_slice(&digit_pair(year / 100));
        bytes[2..4].copy_from_slice(&digit_pair(year));
        for (value, at) in fields.into_iter().zip([5, 8, 11, 14, 17]) {
            bytes[at..at + 2].copy_from_slice(&digit_pair(value));
        }
        let len = match fraction_micros {
            0 => 19,
            micros if micros % 1_000 == 0 => {
                let millis = micros / 1_000;
                bytes[19] = b'.';
                bytes[20..22].copy_from_slice(&digit_pair(millis / 10));
                bytes[22] = b'0' + (millis % 10) as u8;
                23
            }
            micros => {
                bytes[19] = b'.';
                bytes[20..22].copy_from_slice(&digit_pair(micros / 10_000));
                bytes[22..24].copy_from_slice(&digit_pair(micros / 100));
                bytes[24..26].copy_from_slice(&digit_pair(micros));
                26
            }
        };
        DateTimeText { bytes, len }
    }

    /// `[month, day, hour, minute, second]` and the fraction in nanoseconds.
    fn from_fields(year: i32, [month, day, hour, minute, second]: [u32; 5], nanos: u32) -> Self {
        let mut text = DateTimeText {
            bytes: [0; 32],
            len: 0,
        };
        match u32::try_from(year) {
            Ok(year) if year <= 9999 => text.push_digits(year, 4),
            // Beyond what a call's start may be; written as chrono writes it all the same
            // (`%Y`: a sign, then at least four digits).
            _ => {
                text.push(if year < 0 { b'-' } else { b'+' });
                let magnitude = year.unsigned_abs();
                let digits = magnitude.checked_ilog10().unwrap_or(0) + 1;
                text.push_digits(magnitude, digits.max(4));
            }
        }
        text.push(b'-');
        text.push_digits(month, 2);
        text.push(b'-');
        text.push_digits(day, 2);
        text.push(b'T');
        text.push_digits(hour, 2);
        text.push(b':');
        text.push_digits(minute, 2);
        text.push(b':');
        text.push_digits(second, 2);
        match nanos {
            0 => {}
            nanos if nanos % 1_000_000 == 0 => {
                text.push(b'.');
                text.push_digits(nanos / 1_000_000, 3);
            }
            nanos if nanos % 1_000 == 0 => {
                text.push(b'.');
                text.push_digits(nanos / 1_000, 6);
            }
            nanos => {
                text.push(b'.');
                text.push_digits(nanos, 9);
            }
        }
        text
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn push(&mut self, byte: u8) {
        self.bytes[self.len] = byte;
        self.len += 1;
    }

    /// The last `width` decimal digits of `value`, zero-padded: two at a time, from a table.
    fn push_digits(&mut self, mut value: u32, width: u32) {
        let end = self.len + width as usize;
        let mut at = end;
        while at >= self.len + 2 {
            let pair = (value % 100) as usize * 2;
            self.bytes[at - 2..at].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
            value /= 100;
            at -= 2;
        }
        if at > self.len {
            self.bytes[at - 1] = b'0' + (value % 10) as u8;
        }
        self.len = end;
    }
}

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// The proleptic Gregorian year, month and day of `days` since 1970-01-01. Counted in eras of
/// 400 years (146,097 days, the calendar's period) from 0000-03-01, so that a leap day ends its
/// year; every division is of a non-negative number within an era.
fn civil_date(days: i64) -> (i64, u32, u32) {
    /// Days from 0000-03-01 to 1970-01-01.
    const UNIX_EPOCH_FROM_MARCH_0000: i64 = 719_468;
    const DAYS_PER_ERA: i64 = 146_097;
    let from_march_0000 = days + UNIX_EPOCH_FROM_MARCH_0000;
    let era = from_march_0000.div_euclid(DAYS_PER_ERA);
    // 0 to 146,096: unsigned, whose divisions by constants take fewer instructions.
    let day_of_era = from_march_0000.rem_euclid(DAYS_PER_ERA) as u32;
    // Leap days drop out: one every 4 years, none every 100, one every 400.
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months from March, whose lengths repeat 31, 30, 31, 30, 31 every 153 days.
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + i64::from(year_of_era) + i64::from(month <= 2);
    (year, month, day)
}

/// The last two decimal digits of `value`.
fn digit_pair(value: u32) -> [u8; 2] {
    let at = (value % 100) as usize * 2;
    [DIGIT_PAIRS[at], DIGIT_PAIRS[at + 1]]
}

/// "00" to "99".
const DIGIT_PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819202122232425262728293031323334353637383940414243444546474849\
    5051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";

/// Whether `instant` lies in `google.protobuf.Timestamp`'s range, 0001-01-01T00:00:00Z to
/// 9999-12-31T23:59:59.999999999Z (years 1 to 9999 in UTC).
pub fn is_timestamp(instant: DateTime<Utc>) -> bool {
    (1..=9999).contains(&instant.year())
}

/// Parses an IANA zone name such as `Europe/Paris`.
pub fn parse_time_zone(field: &str, name: &str) -> Result<Tz, Error> {
    Tz::from_str(name).map_err(|_| {
        Error::invalid(
            field,
            format!(
                "{} is not an IANA time zone (e.g. \"Europe/Paris\")",
                quote(name)
            ),
        )
    })
}

fn parse_local_date_time(field: &str, text: &str) -> Result<NaiveDateTime, Error> {
    if text.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    if has_utc_offset(text) {
        return Err(Error::invalid(
            field,
            "must not carry a UTC offset or 'Z': send the local time, e.g. \
             \"2026-11-27T09:30:00\", and the zone in start.time_zone",
        ));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        // Years outside 1..=9999 are not RFC 3339, and PostgreSQL cannot store all of them.
        .filter(|local| (1..=9999).contains(&local.year()) && text.len() >= 19)
        .ok_or_else(|| {
            Error::invalid(
                field,
                "must be an RFC 3339 date-time without offset, e.g. \"2026-11-27T09:30:00\"",
            )
        })
}

/// True when the time part ends in `Z` or a `+hh:mm` / `-hh:mm` offset.
fn has_utc_offset(text: &str) -> bool {
    let Some((_, time)) = text.split_once(['T', 't']) else {
        return false;
    };
    time.ends_with(['Z', 'z']) || time.contains(['+', '-'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(date_time: &str, zone: &str) -> Result<CallStart, Error> {
        CallStart::parse("call.start", date_time, zone, Tz::UTC)
    }

    #[test]
    fn local_time_in_a_zone_denotes_an_instant() {
        let start = start("2026-11-27T23:30:00", "America/New_York").unwrap();
        assert_eq!(
            start.instant().unwrap().to_rfc3339(),
            "2026-11-28T04:30:00+00:00"
        );
    }

    #[test]
    fn date_time_text_matches_chrono_formatting() {
        let nanos = [
            0,
            250_000_000,
            1_000,
            123_456_000,
            7,
            999_999_999,
            1_500_000_000,
        ];
        for year in [987, 2026, 9999, 12345, -44] {
            let date = chrono::NaiveDate::from_ymd_opt(year, 3, 4).unwrap();
            for (hour, minute, second) in [(7, 8, 9), (23, 59, 59)] {
                for nanos in nanos {
                    // chrono has leap seconds (nanos past 1e9) only in second 59.
                    let Some(local) = date.and_hms_nano_opt(hour, minute, second, nanos) else {
                        assert!(nanos >= 1_000_000_000 && second != 59);
                        continue;
                    };
                    let start = CallStart {
                        local,
                        zone: Tz::UTC,
                    };
                    assert_eq!(
                        start.date_time_text(),
                        local.format("%Y-%m-%dT%H:%M:%S%.f").to_string()
                    );
                }
            }
        }
    }

    #[test]
    fn date_time_text_from_micros_matches_chrono() {
        let days = [
            i64::MIN / MICROS_PER_DAY,
            -719_528,
            -1,
            0,
            59,
            60,
            11_016,
            20_513,
            2_932_896,
            i64::MAX / MICROS_PER_DAY,
        ];
        let of_day = [0, 1, 250_000, 123_456, 86_399_999_999];
        for day in days {
            for micros_of_day in of_day {
                let Some(micros) = (day * MICROS_PER_DAY).checked_add(micros_of_day) else {
                    continue;
                };
                let Some(local) = DateTime::from_timestamp_micros(micros) else {
                    continue; // beyond chrono's years
                };
                let local = local.naive_utc();
                assert_eq!(
                    DateTimeText::from_unix_micros(micros).as_bytes(),
                    DateTimeText::new(&local).as_bytes(),
                    "{micros}"
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn civil_date_is_chronos(micros in proptest::prelude::any::<i64>()) {
            if let Some(local) = DateTime::from_timestamp_micros(micros) {
                let local = local.naive_utc();
                let (ours, chronos) = (DateTimeText::from_unix_micros(micros), DateTimeText::new(&local));
                proptest::prop_assert_eq!(ours.as_bytes(), chronos.as_bytes());
            }
        }
    }

    #[test]
    fn fractional_seconds_are_kept() {
        let start = start("2026-11-27T09:30:00.250", "").unwrap();
        assert_eq!(start.date_time_text(), "2026-11-27T09:30:00.250");
        assert_eq!(start.zone, Tz::UTC);
    }

    #[test]
    fn offsets_and_zulu_are_refused_with_a_reason() {
        for text in [
            "2026-11-27T09:30:00Z",
            "2026-11-27T09:30:00+01:00",
            "2026-11-27T09:30:00-05:00",
        ] {
            let Err(Error::InvalidArgument(violations)) = start(text, "") else {
                panic!("{text} was accepted");
            };
            assert!(violations[0].description.contains("UTC offset"));
        }
    }

    #[test]
    fn a_time_in_the_spring_forward_gap_is_refused() {
        assert!(start("2026-03-29T02:30:00", "Europe/Paris").is_err());
    }

    #[test]
    fn an_ambiguous_time_takes_the_earlier_instant() {
        // 02:30 happens twice in Paris on 2026-10-25: first at +02:00, then at +01:00.
        let start = start("2026-10-25T02:30:00", "Europe/Paris").unwrap();
        assert_eq!(
            start.instant().unwrap().to_rfc3339(),
            "2026-10-25T00:30:00+00:00"
        );
    }

    #[test]
    fn a_start_whose_instant_leaves_the_timestamp_range_is_refused() {
        for (date_time, zone) in [
            ("0001-01-01T00:00:00", "Europe/Paris"),
            ("9999-12-31T23:00:00", "America/New_York"),
        ] {
            let Err(Error::InvalidArgument(violations)) = start(date_time, zone) else {
                panic!("{date_time} in {zone} was accepted");
            };
            assert_eq!(violations[0].field, "call.start.date_time");
            assert!(violations[0]
                .description
                .contains("outside what a timestamp can carry"));
        }
        assert!(start("0001-01-01T00:00:00", "UTC").is_ok());
        assert!(start("9999-12-31T23:59:59.999999", "UTC").is_ok());
    }

    #[test]
    fn unknown_zones_and_garbage_are_refused() {
        assert!(start("2026-11-27T09:30:00", "Mars/Olympus").is_err());
        assert!(start("yesterday", "").is_err());
        assert!(start("", "").is_err());
        assert!(start("2026-02-30T09:30:00", "").is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        #[test]
        fn any_text_parses_or_is_refused_without_panicking(
            date_time in "\\PC{0,40}",
            zone in "\\PC{0,40}",
        ) {
            let _ = start(&date_time, &zone);
        }

        #[test]
        fn an_accepted_start_in_any_zone_is_a_timestamp(
            year in proptest::prop_oneof![1_i32..=3, 9997_i32..=9999, 1_i32..=9999],
            month in 1_u32..=12,
            day in 1_u32..=28,
            hour in 0_u32..24,
            zone in proptest::sample::select(chrono_tz::TZ_VARIANTS.to_vec()),
        ) {
            let date_time = format!("{year:04}-{month:02}-{day:02}T{hour:02}:00:00");
            if let Ok(start) = start(&date_time, zone.name()) {
                proptest::prop_assert!(is_timestamp(start.instant().unwrap()));
            }
        }
    }
}
