//! The event's JSON shape (the seed's), native schema checks and normalisation
//! into [`Event`], for every input form (JSON, batches, webhook-derived events).
//! Policy (whitelists, ID formats) is the validator plugins' job; this module
//! checks only what must hold for any event: types, required fields, sizes.
//! Problems are reported per field with a machine-readable code.

use super::error::ApiError;
use super::event::Event;
use crate::ErrorCode;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// One incoming event, as clients send it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncomingEvent {
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub platform: Option<String>,
    pub user_id: Option<String>,
    pub author_id: Option<String>,
    pub channel_id: Option<String>,
    pub content: Option<String>,
    pub metadata: Option<Map<String, Value>>,
    /// RFC 3339 text, or a Unix time in seconds or milliseconds.
    pub timestamp: Option<Value>,
}

/// A problem with one field (also the shape of plugin violations in answers).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, code: &str, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), code: code.into(), message: message.into() }
    }
}

/// Limits for the native checks (from config).
#[derive(Debug, Clone)]
pub struct Limits {
    pub min_content_length: usize,
    pub max_content_length: usize,
    pub require_author: bool,
}

const MAX_ID_BYTES: usize = 256;
const MAX_METADATA_KEYS: usize = 64;
const MAX_METADATA_BYTES: usize = 8192;

/// Why a body could not be read as an event.
#[derive(Debug)]
pub enum ParseError {
    /// Not JSON at all (400), with where it broke.
    Malformed { line: usize, column: usize, message: String },
    /// JSON, but a field has the wrong type or is unknown (422).
    Field(FieldError),
}

/// Parse JSON text as `T` (a struct: only a JSON object is one — serde would also
/// take an array of the fields in order); syntax errors say where, type errors
/// name the field.
pub fn parse_as<T: serde::de::DeserializeOwned>(json: &[u8]) -> Result<T, ParseError> {
    if json.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ParseError::Field(FieldError::new(
            "event",
            "invalid_type",
            "expected a JSON object, not an array",
        )));
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    let value: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    if value.is_ok()
        && let Err(e) = de.end()
    {
        return Err(ParseError::Malformed { line: e.line(), column: e.column(), message: e.to_string() });
    }
    value.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        if matches!(inner.classify(), serde_json::error::Category::Syntax | serde_json::error::Category::Eof) {
            return ParseError::Malformed { line: inner.line(), column: inner.column(), message };
        }
        if message.starts_with("unknown field") {
            let field = message.split('`').nth(1).unwrap_or("?").to_string();
            ParseError::Field(FieldError { field, code: "unknown_field".into(), message })
        } else if message.starts_with("missing field") {
            let field = message.split('`').nth(1).unwrap_or("?").to_string();
            ParseError::Field(FieldError { field, code: "required".into(), message })
        } else {
            let field = if path == "." { "event".into() } else { path };
            ParseError::Field(FieldError { field, code: "invalid_type".into(), message })
        }
    })
}

/// Parse one event's JSON.
pub fn parse(json: &[u8]) -> Result<IncomingEvent, ParseError> {
    parse_as(json)
}

impl ParseError {
    /// The answer for a request body that is not a `T`: 400 `malformed_json`, or
    /// 422 `code` naming the field (`shape` says what the body must be).
    pub fn into_api_error(self, code: ErrorCode, shape: &str) -> ApiError {
        match self {
            ParseError::Malformed { line, column, message } => ApiError::malformed(line, column, &message),
            ParseError::Field(e) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, format!("`{}`: {} ({shape})", e.field, e.message))
                    .with_details(json!({ "violations": [e] }))
            }
        }
    }
}

/// A request body read as `T`, or the answer saying why not (see [`ParseError::into_api_error`]).
pub fn parse_body<T: serde::de::DeserializeOwned>(json: &[u8], code: ErrorCode, shape: &str) -> Result<T, ApiError> {
    parse_as(json).map_err(|e| e.into_api_error(code, shape))
}

/// One event's JSON, parsed and checked: the event, or its problems (400 for a
/// body that is not JSON, else each field's problem for a 422).
pub fn parse_event(json: &[u8], limits: &Limits, now_ms: u64) -> Result<Event, EventRefused> {
    match parse(json) {
        Ok(incoming) => normalize(incoming, limits, now_ms).map_err(EventRefused::Invalid),
        Err(ParseError::Field(e)) => Err(EventRefused::Invalid(vec![e])),
        Err(ParseError::Malformed { line, column, message }) => {
            Err(EventRefused::Malformed(ApiError::malformed(line, column, &message)))
        }
    }
}

/// Why one event was refused.
#[derive(Debug)]
pub enum EventRefused {
    /// Not JSON (400).
    Malformed(ApiError),
    /// Field problems (422 `validation_failed` on its own, a `rejected` item in a batch).
    Invalid(Vec<FieldError>),
}

impl EventRefused {
    /// The problems as field errors (a malformed item of a batch is one).
    pub fn into_field_errors(self) -> Vec<FieldError> {
        match self {
            EventRefused::Invalid(errors) => errors,
            EventRefused::Malformed(e) => vec![FieldError::new("event", "malformed_json", e.message)],
        }
    }
}

impl From<EventRefused> for ApiError {
    fn from(e: EventRefused) -> Self {
        match e {
            EventRefused::Malformed(e) => e,
            EventRefused::Invalid(errors) => ApiError::invalid(&errors),
        }
    }
}

/// `{"events": [ … ]}`: each item kept raw, so one bad item cannot sink the batch.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    pub events: Vec<Box<serde_json::value::RawValue>>,
}

impl BatchBody {
    /// Parse a batch body of 1 to `max_events` events (422 `empty_batch` or
    /// `batch_too_large` otherwise).
    pub fn parse(json: &[u8], max_events: usize) -> Result<Self, ApiError> {
        let batch: BatchBody = parse_body(json, ErrorCode::InvalidBatch, "the body must be {\"events\": [ … ]}")?;
        let n = batch.events.len();
        if n == 0 {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::EmptyBatch,
                "the batch holds no events: send at least one in `events`",
            ));
        }
        if n > max_events {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::BatchTooLarge,
                format!("{n} events in one batch; at most MAX_BATCH_EVENTS = {max_events}"),
            ));
        }
        Ok(batch)
    }

    /// Each item's `event_id` as sent (what to call a rejected item).
    pub fn ids(&self) -> Vec<Option<Value>> {
        self.events
            .iter()
            .map(|raw| serde_json::from_str::<Value>(raw.get()).ok().and_then(|v| v.get("event_id").cloned()))
            .collect()
    }
}

impl From<Event> for IncomingEvent {
    /// An event that came in another form (a platform adapter's), to be checked like JSON.
    fn from(e: Event) -> Self {
        let Event { event_id, event_type, platform, user_id, author_id, channel_id, content, timestamp_ms, metadata } =
            e;
        IncomingEvent {
            event_id: Some(event_id),
            event_type: Some(event_type),
            platform: Some(platform),
            user_id: Some(user_id),
            author_id,
            channel_id,
            content: Some(content),
            metadata: Some(metadata.into_iter().map(|(k, v)| (k, Value::String(v))).collect()),
            timestamp: (timestamp_ms > 0).then(|| json!(timestamp_ms)),
        }
    }
}

/// Native checks and normalisation. `now_ms` stands in for a missing timestamp.
pub fn normalize(e: IncomingEvent, limits: &Limits, now_ms: u64) -> Result<Event, Vec<FieldError>> {
    let mut errors = Vec::new();
    let required = |field: &str, v: Option<String>, errors: &mut Vec<FieldError>| -> String {
        match v {
            Some(s) if !s.trim().is_empty() => {
                if field != "content" && s.len() > MAX_ID_BYTES {
                    errors.push(FieldError::new(
                        field,
                        "too_long",
                        format!("{field} is longer than {MAX_ID_BYTES} bytes"),
                    ));
                }
                s
            }
            _ => {
                errors.push(FieldError::new(field, "required", format!("{field} is required")));
                String::new()
            }
        }
    };
    let event_id = required("event_id", e.event_id, &mut errors);
    let event_type = required("event_type", e.event_type, &mut errors);
    let platform = required("platform", e.platform, &mut errors);
    let user_id = required("user_id", e.user_id, &mut errors);
    let content = required("content", e.content, &mut errors);
    let chars = content.chars().count();
    if !content.trim().is_empty() {
        if chars < limits.min_content_length {
            errors.push(FieldError::new(
                "content",
                "too_short",
                format!("content has {chars} characters, minimum {}", limits.min_content_length),
            ));
        } else if chars > limits.max_content_length {
            errors.push(FieldError::new(
                "content",
                "too_long",
                format!("content has {chars} characters, maximum {}", limits.max_content_length),
            ));
        }
    }
    // Optional ids sent blank are absent, not errors.
    let author_id = e.author_id.filter(|a| !a.trim().is_empty());
    let channel_id = e.channel_id.filter(|c| !c.trim().is_empty());
    if author_id.is_none() && limits.require_author {
        errors.push(FieldError::new("author_id", "required", "author_id is required (REQUIRE_AUTHOR)"));
    }
    for (field, v) in [("author_id", &author_id), ("channel_id", &channel_id)] {
        if v.as_ref().is_some_and(|s| s.len() > MAX_ID_BYTES) {
            errors.push(FieldError::new(field, "too_long", format!("{field} is longer than {MAX_ID_BYTES} bytes")));
        }
    }
    let metadata = match e.metadata {
        None => Vec::new(),
        Some(map) => {
            if map.len() > MAX_METADATA_KEYS {
                errors.push(FieldError::new(
                    "metadata",
                    "too_large",
                    format!("metadata has more than {MAX_METADATA_KEYS} keys"),
                ));
            }
            let flat: Vec<(String, String)> = map
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => (k, s),
                    other => (k, other.to_string()),
                })
                .collect();
            if flat.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() > MAX_METADATA_BYTES {
                errors.push(FieldError::new(
                    "metadata",
                    "too_large",
                    format!("metadata is larger than {MAX_METADATA_BYTES} bytes"),
                ));
            }
            flat
        }
    };
    let timestamp_ms = match e.timestamp {
        None | Some(Value::Null) => now_ms,
        Some(v) => match timestamp_ms(&v) {
            Some(ms) => ms,
            None => {
                errors.push(FieldError::new(
                    "timestamp",
                    "invalid_format",
                    "timestamp must be RFC 3339 (2026-01-31T12:00:00Z) or Unix seconds/milliseconds",
                ));
                0
            }
        },
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Event { event_id, event_type, platform, user_id, author_id, channel_id, content, timestamp_ms, metadata })
}

/// The dedup hash of an event (hex SHA-256 over content, author and platform — the
/// seed's rule), where the author is `author_id`, else `user_id`: the same
/// message from two accounts is two events (a copy-paste campaign is screened
/// once per account), a client's retry of one account's message is one.
pub fn dedup_key(e: &Event) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(e.content.as_bytes());
    h.update([0x1f]);
    h.update(e.author_id.as_deref().unwrap_or(&e.user_id).as_bytes());
    h.update([0x1f]);
    h.update(e.platform.as_bytes());
    hex::encode(h.finalize())
}

fn timestamp_ms(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => {
            let x = n.as_f64()?;
            if !(0.0..4e12).contains(&x) {
                return None;
            }
            // Below 1e11 it is seconds (that is before 1973 in milliseconds).
            Some(if x < 1e11 { (x * 1000.0) as u64 } else { x as u64 })
        }
        Value::String(s) => parse_rfc3339(s),
        _ => None,
    }
}

/// Unix milliseconds as RFC 3339 UTC with whole seconds (`2026-12-02T18:30:00Z`).
pub fn format_rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest / 60 % 60, rest % 60)
}

/// Strict RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)`) to Unix milliseconds:
/// digits only where digits belong, real calendar days (leap years counted), no
/// second 60 (a leap second cannot be told from a typo here), offsets within ±23:59.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
    };
    let (y, mo, d, h, mi, sec) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=month_days).contains(&d) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let first3 = format!("{:0<3}", &frac[..digits.min(3)]);
        millis = first3.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && matches!(rest.as_bytes()[0], b'+' | b'-') && rest.as_bytes()[3] == b':' => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let two = |r: std::ops::Range<usize>| {
                let part = rest.get(r)?;
                part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse::<i64>().ok())?
            };
            let (oh, om) = (two(1..3)?, two(4..6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 60 + om)
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let (y2, m2) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    u64::try_from(secs * 1000 + millis).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits { min_content_length: 1, max_content_length: 10, require_author: false }
    }

    #[test]
    fn rfc3339_and_unix_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2026-11-29T09:11:35.250Z"), Some(1_795_943_495_250));
        assert_eq!(parse_rfc3339("2026-11-29T10:11:35+01:00"), Some(1_795_943_495_000));
        assert_eq!(parse_rfc3339("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Some(1_709_164_800_000), "a leap day");
        for t in ["1970-01-01T00:00:00Z", "2024-02-29T23:59:59Z", "2026-12-02T18:30:05Z", "2100-03-01T00:00:00Z"] {
            assert_eq!(format_rfc3339(parse_rfc3339(t).unwrap()), t);
        }
        for impossible in [
            "2026-02-31T23:59:60.9999Z", // the probe's
            "2026-02-29T00:00:00Z",      // not a leap year
            "2026-04-31T00:00:00Z",
            "2026-01-01T00:00:60Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:00+24:00",
            "2026-01-01 00:00:00Z",
            "+026-01-01T00:00:00Z",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00.Z",
        ] {
            assert_eq!(parse_rfc3339(impossible), None, "{impossible}");
        }
        assert_eq!(timestamp_ms(&serde_json::json!(1_795_943_495)), Some(1_795_943_495_000));
        assert_eq!(timestamp_ms(&serde_json::json!(1_795_943_495_250u64)), Some(1_795_943_495_250));
    }

    #[test]
    fn type_errors_and_unknown_fields_name_the_field() {
        let field = |json: &str| match parse(json.as_bytes()) {
            Err(ParseError::Field(f)) => (f.field, f.code),
            other => panic!("{other:?}"),
        };
        assert_eq!(field(r#"{"event_id": 5}"#), ("event_id".into(), "invalid_type".into()));
        assert_eq!(field(r#"{"contnet": "x"}"#), ("contnet".into(), "unknown_field".into()));
        assert_eq!(field(r#"[1]"#).1, "invalid_type");
        let Err(ParseError::Malformed { line, column, .. }) = parse(b"{\n \"event_id\": ,}") else { panic!() };
        assert_eq!((line, column), (2, 14));
    }

    #[test]
    fn missing_and_oversized_fields_are_all_reported() {
        let e = parse(br#"{"event_id": "e1", "content": "far too long text", "metadata": {"n": 1}}"#).unwrap();
        let errs = normalize(e, &limits(), 7).unwrap_err();
        let got: Vec<(&str, &str)> = errs.iter().map(|e| (e.field.as_str(), e.code.as_str())).collect();
        assert_eq!(
            got,
            [("event_type", "required"), ("platform", "required"), ("user_id", "required"), ("content", "too_long")]
        );
    }

    #[test]
    fn a_good_event_normalises_and_dedup_ignores_ids() {
        let json = r#"{"event_id":"e1","event_type":"message","platform":"web","user_id":"u","author_id":"a","content":"hi","metadata":{"n":1,"s":"x"}}"#;
        let a = normalize(parse(json.as_bytes()).unwrap(), &limits(), 7).unwrap();
        assert_eq!(a.timestamp_ms, 7);
        assert_eq!(a.metadata, [("n".to_string(), "1".to_string()), ("s".to_string(), "x".to_string())]);
        let b = normalize(parse(json.replace("\"e1\"", "\"e2\"").as_bytes()).unwrap(), &limits(), 8).unwrap();
        assert_eq!(dedup_key(&a), dedup_key(&b));
        let c = normalize(parse(json.replace("\"web\"", "\"slack\"").as_bytes()).unwrap(), &limits(), 8).unwrap();
        assert_ne!(dedup_key(&a), dedup_key(&c));
        // Without an author, the user stands for it: two users' copies are two events.
        let no_author = json.replace(r#""author_id":"a","#, "");
        let u = normalize(parse(no_author.as_bytes()).unwrap(), &limits(), 8).unwrap();
        let v = normalize(
            parse(no_author.replace(r#""user_id":"u""#, r#""user_id":"v""#).as_bytes()).unwrap(),
            &limits(),
            8,
        )
        .unwrap();
        assert_ne!(dedup_key(&u), dedup_key(&v));
        let again = normalize(parse(no_author.replace("\"e1\"", "\"e9\"").as_bytes()).unwrap(), &limits(), 9).unwrap();
        assert_eq!(dedup_key(&u), dedup_key(&again), "the same user's copy is still a duplicate");
    }
}

/// Property tests: any bytes, any JSON object, any timestamp text get an answer
/// (never a panic), what is accepted holds the limits, and valid times round-trip.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn limits() -> Limits {
        Limits { min_content_length: 2, max_content_length: 40, require_author: false }
    }

    fn any_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            "\\PC{0,60}".prop_map(Value::from),
            "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,4})?(Z|[+-][0-9]{2}:[0-9]{2})"
                .prop_map(Value::from),
        ];
        leaf.prop_recursive(2, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Objects with any subset of the event's fields (and now and then an unknown one).
    fn any_event_object() -> impl Strategy<Value = Value> {
        const FIELDS: &[&str] = &[
            "event_id",
            "event_type",
            "platform",
            "user_id",
            "author_id",
            "channel_id",
            "content",
            "metadata",
            "timestamp",
            "extra",
        ];
        proptest::collection::vec((0..FIELDS.len(), any_value()), 0..12)
            .prop_map(|pairs| Value::Object(pairs.into_iter().map(|(i, v)| (FIELDS[i].to_string(), v)).collect()))
    }

    /// Days since 1970 by counting, independent of the parser's formula.
    fn days_by_counting(y: i64, mo: i64, d: i64) -> i64 {
        let leap = |y: i64| y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        let mut days: i64 = (1970..y).map(|y| if leap(y) { 366 } else { 365 }).sum();
        let months = [31, if leap(y) { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        days += months[..(mo - 1) as usize].iter().sum::<i64>();
        days + d - 1
    }

    proptest! {
        #[test]
        fn any_bytes_get_an_answer(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_event(&bytes, &limits(), 1);
        }

        #[test]
        fn accepted_events_hold_the_limits(object in any_event_object()) {
            let text = object.to_string();
            if let Ok(e) = parse_event(text.as_bytes(), &limits(), 1) {
                let chars = e.content.chars().count();
                prop_assert!((2..=40).contains(&chars), "content of {} characters accepted", chars);
                for id in [&e.event_id, &e.event_type, &e.platform, &e.user_id] {
                    prop_assert!(!id.trim().is_empty() && id.len() <= MAX_ID_BYTES);
                }
                prop_assert!(e.metadata.len() <= MAX_METADATA_KEYS);
                prop_assert!(e.metadata.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() <= MAX_METADATA_BYTES);
            }
        }

        #[test]
        fn any_text_as_a_timestamp_gets_an_answer(text in "\\PC{0,40}") {
            let _ = parse_rfc3339(&text);
        }

        #[test]
        fn valid_times_round_trip(
            y in 1970i64..2200, mo in 1i64..=12, d in 1i64..=31, h in 0i64..24, mi in 0i64..60, s in 0i64..60,
            ms in 0i64..1000,
        ) {
            let text = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z");
            let month_days = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][(mo - 1) as usize];
            let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
            let real = d <= month_days && !(mo == 2 && d == 29 && !leap);
            match parse_rfc3339(&text) {
                Some(got) => {
                    prop_assert!(real, "{} accepted", text);
                    let want = ((days_by_counting(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s) * 1000 + ms) as u64;
                    prop_assert_eq!(got, want);
                }
                None => prop_assert!(!real, "{} refused", text),
            }
        }
    }
}
