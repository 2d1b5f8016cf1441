//! What webhook adapters need to check a platform's signature: header lookup,
//! HMAC-SHA256, hex, a constant-time comparison and a timestamp window. Every
//! refusal is an [`AdapterError`] whose message never contains a secret.

use crate::AdapterError;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The first value of header `name` (case-insensitive), trimmed.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim())
}

/// HMAC-SHA256 of the concatenated `parts` under `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Equality whose time depends only on the lengths, not on where the bytes differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes.iter().flat_map(|b| [DIGITS[(b >> 4) as usize] as char, DIGITS[(b & 15) as usize] as char]).collect()
}

/// Bytes from hex (either case); `None` when it is not hex.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if text.len() % 2 != 0 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    text.chunks(2).map(|p| Some(digit(p[0])? << 4 | digit(p[1])?)).collect()
}

/// Check `given` (hex, optionally after `prefix` such as `v0=` or `sha256=`) against
/// HMAC-SHA256 of `parts` under `secret`, in constant time.
pub fn verify_hmac_hex(secret: &[u8], parts: &[&[u8]], given: &str, prefix: &str) -> Result<(), AdapterError> {
    let bad = || AdapterError::new("invalid_signature", "the request signature does not match");
    let hex_part = given.strip_prefix(prefix).ok_or_else(bad)?;
    let given = from_hex(hex_part).ok_or_else(bad)?;
    if constant_time_eq(&given, &hmac_sha256(secret, parts)) { Ok(()) } else { Err(bad()) }
}

/// Refuse a request whose Unix timestamp (seconds, as sent) is more than
/// `max_age_s` from the host's clock, either way: a replayed or stale request.
pub fn check_timestamp(timestamp: &str, max_age_s: u64) -> Result<(), AdapterError> {
    let sent: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| AdapterError::new("invalid_timestamp", "the signature timestamp is not a Unix time in seconds"))?;
    let now = crate::now_ms() / 1000;
    if now.abs_diff(sent) > max_age_s {
        return Err(AdapterError::new(
            "stale_timestamp",
            format!("the request was signed {}s from now; at most {max_age_s}s is accepted", now.abs_diff(sent)),
        ));
    }
    Ok(())
}

/// Headers of Palisade's own signing scheme (web adapter, forwarded Discord messages):
/// `X-Palisade-Timestamp: <unix seconds>` and
/// `X-Palisade-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub const PALISADE_TIMESTAMP: &str = "x-palisade-timestamp";
pub const PALISADE_SIGNATURE: &str = "x-palisade-signature";

/// Check a request signed with Palisade's scheme (see [`PALISADE_SIGNATURE`]),
/// refusing it when older than `max_age_s`.
pub fn verify_palisade(
    headers: &[(String, String)],
    body: &[u8],
    secret: &str,
    max_age_s: u64,
) -> Result<(), AdapterError> {
    let missing = |h: &str| AdapterError::new("missing_signature", format!("the `{h}` header is required"));
    let timestamp = header(headers, PALISADE_TIMESTAMP).ok_or_else(|| missing(PALISADE_TIMESTAMP))?;
    let signature = header(headers, PALISADE_SIGNATURE).ok_or_else(|| missing(PALISADE_SIGNATURE))?;
    check_timestamp(timestamp, max_age_s)?;
    verify_hmac_hex(secret.as_bytes(), &[timestamp.as_bytes(), b".", body], signature, "sha256=")
}

/// Sign a body with Palisade's scheme: the two headers to send (for tests and senders).
pub fn sign_palisade(body: &[u8], secret: &str, timestamp_s: u64) -> [(String, String); 2] {
    let ts = timestamp_s.to_string();
    let mac = hmac_sha256(secret.as_bytes(), &[ts.as_bytes(), b".", body]);
    [(PALISADE_TIMESTAMP.into(), ts), (PALISADE_SIGNATURE.into(), format!("sha256={}", hex(&mac)))]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2_and_round_trips() {
        // RFC 4231 test case 2.
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(hex(&mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        assert_eq!(from_hex(&hex(&mac)).unwrap(), mac);
        assert!(
            verify_hmac_hex(b"Jefe", &[b"what do ya want for nothing?"], &format!("v0={}", hex(&mac)), "v0=").is_ok()
        );
        let err = verify_hmac_hex(b"other", &[b"what do ya want for nothing?"], &hex(&mac), "").unwrap_err();
        assert_eq!(err.code, "invalid_signature");
        assert!(verify_hmac_hex(b"Jefe", &[b"x"], "v0=zz", "v0=").is_err());
    }

    #[test]
    fn timestamps_outside_the_window_are_stale() {
        crate::testing::set_now_ms(Some(1_700_000_000_000));
        assert!(check_timestamp("1700000000", 300).is_ok());
        assert!(check_timestamp("1699999800", 300).is_ok());
        assert_eq!(check_timestamp("1699999600", 300).unwrap_err().code, "stale_timestamp");
        assert_eq!(check_timestamp("soon", 300).unwrap_err().code, "invalid_timestamp");
        crate::testing::set_now_ms(None);
    }

    #[test]
    fn palisade_scheme_round_trips_and_refuses_tampering() {
        let now = crate::now_ms() / 1000;
        let headers = sign_palisade(b"{}", "s3cret", now).to_vec();
        assert!(verify_palisade(&headers, b"{}", "s3cret", 300).is_ok());
        assert_eq!(verify_palisade(&headers, b"{ }", "s3cret", 300).unwrap_err().code, "invalid_signature");
        assert_eq!(verify_palisade(&headers[..1], b"{}", "s3cret", 300).unwrap_err().code, "missing_signature");
        let old = sign_palisade(b"{}", "s3cret", now - 600).to_vec();
        assert_eq!(verify_palisade(&old, b"{}", "s3cret", 300).unwrap_err().code, "stale_timestamp");
    }

    #[test]
    fn headers_are_case_insensitive() {
        let h = vec![("X-Slack-Signature".to_string(), " v0=ab ".to_string())];
        assert_eq!(header(&h, "x-slack-signature"), Some("v0=ab"));
        assert_eq!(header(&h, "x-other"), None);
    }
}
