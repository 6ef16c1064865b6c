//! Realistic calls: the same generator feeds the seeder (rows written with COPY) and the
//! `create` workload (CreateCall requests), so both load the same shape of data.

use chrono::{Duration as TimeDelta, LocalResult, NaiveDate, NaiveDateTime, TimeZone};
use std::{str::FromStr, sync::LazyLock};

use callsd::{domain::CallId, pb::calls::v1 as pb};
use chrono_tz::Tz;
use rand::{rngs::SmallRng, Rng, SeedableRng};

/// Seeded calls get ids `01900000-0000-7000-8000-<n as 12 decimal digits>`, so a load
/// generator and a pgbench script can both name call `n` without a lookup.
pub const SEEDED_ID_PREFIX: &str = "01900000-0000-7000-8000-";

/// The id of seeded call number `n` (1-based).
pub fn seeded_id(n: u64) -> CallId {
    CallId::from_str(&format!("{SEEDED_ID_PREFIX}{n:012}")).expect("a well-formed uuid")
}

/// Zones a tenant's calls start in, most of them in the first.
const ZONES: [Tz; 4] = [
    Tz::Europe__Paris,
    Tz::America__New_York,
    Tz::Europe__London,
    Tz::UTC,
];
const STATUSES: [pb::CallStatus; 6] = [
    pb::CallStatus::Completed,
    pb::CallStatus::NoAnswered,
    pb::CallStatus::Message,
    pb::CallStatus::WrongNumber,
    pb::CallStatus::Busy,
    pb::CallStatus::Abandoned,
];

/// One call's writable fields, as a client would send them.
#[derive(Debug, Clone)]
pub struct GeneratedCall {
    pub button_id: String,
    pub client_id: String,
    pub caller_number: String,
    pub called_number: String,
    pub tracking_number: String,
    pub start_local: NaiveDateTime,
    pub zone: Tz,
    pub duration_secs: u32,
    pub status: pb::CallStatus,
    pub external_id: String,
    pub call_type: pb::CallType,
    pub record: Option<(String, String)>,
}

/// The company's own numbers (called, and tracking), the same in every generator.
static COMPANY_NUMBERS: LazyLock<(Vec<String>, Vec<String>)> = LazyLock::new(|| {
    let mut fixed = SmallRng::seed_from_u64(42);
    let called = (0..50).map(|_| french_landline(&mut fixed)).collect();
    let tracking = (0..20).map(|_| french_landline(&mut fixed)).collect();
    (called, tracking)
});

/// Makes calls for one tenant: a few company numbers called by many customers.
pub struct CallGenerator {
    rng: SmallRng,
    company_numbers: &'static [String],
    tracking_numbers: &'static [String],
    newest: NaiveDateTime,
}

impl CallGenerator {
    pub fn new(seed: u64) -> Self {
        CallGenerator {
            rng: SmallRng::seed_from_u64(seed),
            company_numbers: &COMPANY_NUMBERS.0,
            tracking_numbers: &COMPANY_NUMBERS.1,
            newest: NaiveDate::from_ymd_opt(2026, 11, 1)
                .expect("a valid date")
                .and_hms_opt(0, 0, 0)
                .expect("a valid time"),
        }
    }

    pub fn rng(&mut self) -> &mut SmallRng {
        &mut self.rng
    }

    pub fn next_call(&mut self, sequence: u64) -> GeneratedCall {
        let rng = &mut self.rng;
        let caller_number = if rng.random_bool(0.7) {
            french_mobile(rng)
        } else {
            us_number(rng)
        };
        let called_number =
            self.company_numbers[rng.random_range(0..self.company_numbers.len())].clone();
        let tracking_number = if rng.random_bool(0.5) {
            self.tracking_numbers[rng.random_range(0..self.tracking_numbers.len())].clone()
        } else {
            String::new()
        };
        let zone = if rng.random_bool(0.7) {
            ZONES[0]
        } else {
            ZONES[rng.random_range(1..ZONES.len())]
        };
        // A year of history, to the second.
        let mut start_local =
            self.newest - TimeDelta::seconds(rng.random_range(0..365 * 24 * 3600));
        // The service refuses a local time the clocks skip (daylight saving time).
        if zone.from_local_datetime(&start_local) == LocalResult::None {
            start_local += TimeDelta::hours(1);
        }
        let record = rng.random_bool(0.3).then(|| {
            (
                "audio/mpeg".to_owned(),
                format!("https://records.example.com/{sequence}.mp3"),
            )
        });
        GeneratedCall {
            button_id: format!("button-{}", rng.random_range(0..20)),
            client_id: format!("client-{}", rng.random_range(0..100_000)),
            caller_number,
            called_number,
            tracking_number,
            start_local,
            zone,
            duration_secs: rng.random_range(0..1800),
            status: STATUSES[rng.random_range(0..STATUSES.len())],
            external_id: format!("ext-{sequence}"),
            call_type: if rng.random_bool(0.5) {
                pb::CallType::ClickToCall
            } else {
                pb::CallType::CallTracking
            },
            record,
        }
    }

    /// A random run of `length` digits: what a user types to find a number.
    pub fn search_digits(&mut self, length: usize) -> String {
        (0..length)
            .map(|_| char::from(b'0' + self.rng.random_range(0..10u8)))
            .collect()
    }
}

impl GeneratedCall {
    pub fn to_proto(&self) -> pb::Call {
        pb::Call {
            button_id: self.button_id.clone(),
            client_id: self.client_id.clone(),
            caller_number: self.caller_number.clone(),
            called_number: self.called_number.clone(),
            tracking_number: self.tracking_number.clone(),
            start: Some(pb::CallStart {
                date_time: self.start_local.format("%Y-%m-%dT%H:%M:%S").to_string(),
                time_zone: self.zone.name().to_owned(),
            }),
            duration: Some(prost_types::Duration {
                seconds: i64::from(self.duration_secs),
                nanos: 0,
            }),
            status: self.status as i32,
            external_id: self.external_id.clone(),
            r#type: self.call_type as i32,
            record: self.record.as_ref().map(|(mime_type, url)| pb::CallRecord {
                mime_type: mime_type.clone(),
                url: url.clone(),
            }),
            ..pb::Call::default()
        }
    }
}

fn digits(rng: &mut SmallRng, count: usize) -> Vec<u8> {
    (0..count).map(|_| rng.random_range(0..10u8)).collect()
}

fn pairs(digits: &[u8]) -> String {
    digits
        .chunks(2)
        .map(|pair| {
            pair.iter()
                .map(|d| char::from(b'0' + d))
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn french_mobile(rng: &mut SmallRng) -> String {
    let mobile = if rng.random_bool(0.5) { '6' } else { '7' };
    format!("+33 {mobile} {}", pairs(&digits(rng, 8)))
}

fn french_landline(rng: &mut SmallRng) -> String {
    format!("+33 {} {}", rng.random_range(1..6), pairs(&digits(rng, 8)))
}

fn us_number(rng: &mut SmallRng) -> String {
    let all = digits(rng, 10);
    let text: String = all.iter().map(|d| char::from(b'0' + d)).collect();
    // Area codes never start with 0 or 1.
    let area = format!("{}{}", rng.random_range(2..10), &text[1..3]);
    format!("+1 ({area}) {}-{}", &text[3..6], &text[6..10])
}
