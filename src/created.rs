//! The image's creation time: the config's `created`, its history entries' and the OCI
//! annotation `org.opencontainers.image.created`.
//!
//! build-image.nix passes either RFC 3339 text (default `1970-01-01T00:00:01Z`, the time every
//! file's mtime also says) or, for `created = "now"`, the seconds since the epoch at evaluation,
//! written here as `YYYY-MM-DDTHH:MM:SSZ`. Text is checked, not rewritten: the config holds what
//! the user wrote.

use serde::Deserialize;

use crate::error::{Error, Result};

/// A creation time as given.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Created {
    /// Seconds since the epoch (UTC).
    Epoch(u64),
    /// RFC 3339 text, with upper-case `T` and `Z` or a numeric offset.
    Text(String),
}

impl std::str::FromStr for Created {
    type Err = String;

    /// Digits are seconds since the epoch; anything else must be RFC 3339.
    fn from_str(s: &str) -> std::result::Result<Created, String> {
        let c = match s.parse::<u64>() {
            Ok(n) => Created::Epoch(n),
            Err(_) => Created::Text(s.to_string()),
        };
        c.rfc3339().map(|_| c).map_err(|e| e.to_string())
    }
}

impl Created {
    /// The time as RFC 3339 text; an error names the problem.
    pub fn rfc3339(&self) -> Result<String> {
        match self {
            // RFC 3339 years have four digits.
            Created::Epoch(secs) if *secs > LAST_SECOND => Err(Error::Usage(format!("created {secs} seconds since the epoch is after the year 9999, which RFC 3339 cannot write"))),
            Created::Epoch(secs) => Ok(from_epoch(*secs)),
            Created::Text(t) => check(t).map(|()| t.clone()).map_err(|why| Error::Usage(format!("created `{t}` is not an RFC 3339 time such as 2024-05-01T12:00:00Z: {why}"))),
        }
    }
}

/// Seconds since the epoch of a checked RFC 3339 time, its fraction dropped (SPDX wants whole
/// seconds in UTC); a time before the epoch is 0.
pub fn to_epoch(t: &str) -> Result<u64> {
    check(t).map_err(|why| Error::Usage(format!("created `{t}` is not an RFC 3339 time: {why}")))?;
    let num = |from: usize, n: usize| t[from..from + n].parse::<i64>().expect("checked digits");
    let (y, m, d) = (num(0, 4), num(5, 2), num(8, 2));
    // Howard Hinnant's days-from-civil, the inverse of [`from_epoch`]'s.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let mut secs = days * 86_400 + num(11, 2) * 3600 + num(14, 2) * 60 + num(17, 2);
    let zone = t[19..].trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    if let Some(sign) = zone.chars().next().filter(|c| *c == '+' || *c == '-') {
        let offset = zone[1..3].parse::<i64>().expect("checked") * 3600 + zone[4..6].parse::<i64>().expect("checked") * 60;
        secs -= if sign == '+' { offset } else { -offset };
    }
    Ok(secs.max(0) as u64)
}

/// 9999-12-31T23:59:59Z, the last second RFC 3339 can write.
pub const LAST_SECOND: u64 = 253_402_300_799;

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch.
pub fn from_epoch(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil: the proleptic Gregorian calendar, no tables.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// RFC 3339's `date-time`: `YYYY-MM-DDTHH:MM:SS`, optional fraction, then `Z` or `±HH:MM`.
fn check(t: &str) -> std::result::Result<(), &'static str> {
    let b = t.as_bytes();
    let digits = |from: usize, n: usize| -> std::result::Result<u32, &'static str> {
        let part = b.get(from..from + n).ok_or("too short")?;
        if !part.iter().all(u8::is_ascii_digit) {
            return Err("a digit is missing");
        }
        Ok(part.iter().fold(0, |v, d| v * 10 + u32::from(d - b'0')))
    };
    let sep = |at: usize, c: u8, what: &'static str| if b.get(at) == Some(&c) { Ok(()) } else { Err(what) };
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    sep(4, b'-', "expected `-` after the year")?;
    sep(7, b'-', "expected `-` after the month")?;
    sep(10, b'T', "expected `T` between date and time")?;
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    sep(13, b':', "expected `:` after the hour")?;
    sep(16, b':', "expected `:` after the minutes")?;
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err("the month is not 01 to 12"),
    };
    if day == 0 || day > days_in_month {
        return Err("no such day in that month");
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err("the time of day is out of range");
    }
    let mut at = 19;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        if at == start {
            return Err("a fraction of a second needs digits");
        }
    }
    match b.get(at) {
        Some(b'Z') if at + 1 == b.len() => Ok(()),
        Some(b'+' | b'-') if at + 6 == b.len() => {
            let (h, m) = (digits(at + 1, 2)?, digits(at + 4, 2)?);
            sep(at + 3, b':', "expected `:` in the offset")?;
            if h > 23 || m > 59 { Err("the offset is out of range") } else { Ok(()) }
        }
        _ => Err("expected `Z` or an offset such as +02:00 at the end"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_seconds_are_written_as_utc() {
        assert_eq!(from_epoch(0), "1970-01-01T00:00:00Z");
        assert_eq!(from_epoch(1), "1970-01-01T00:00:01Z");
        // Checked with `date -u -d @...`.
        assert_eq!(from_epoch(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(from_epoch(1_796_601_599), "2026-12-06T23:59:59Z");
        assert_eq!(from_epoch(4_102_444_800), "2100-01-01T00:00:00Z");
        assert_eq!(from_epoch(LAST_SECOND), "9999-12-31T23:59:59Z");
        assert!(Created::Epoch(LAST_SECOND + 1).rfc3339().unwrap_err().to_string().contains("after the year 9999"));
    }

    #[test]
    fn rfc3339_text_is_checked() {
        for ok in ["1970-01-01T00:00:01Z", "2024-02-29T23:59:60.123Z", "2024-05-01T12:00:00+02:00", "2024-05-01T12:00:00-11:30"] {
            assert_eq!(ok.parse::<Created>().unwrap().rfc3339().unwrap(), ok);
        }
        for bad in ["", "now", "2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z", "2024-01-01 00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T00:00:00", "2024-01-01T00:00:00.Z", "2024-01-01T00:00:00+2:00", "2024-01-01T00:00:00Zjunk"] {
            assert!(bad.parse::<Created>().is_err(), "{bad}");
        }
        assert_eq!("86400".parse::<Created>().unwrap().rfc3339().unwrap(), "1970-01-02T00:00:00Z");
    }

    #[test]
    fn text_back_to_epoch_seconds_in_utc() {
        for secs in [0, 1, 951_782_400, 1_796_601_599, 4_102_444_800] {
            assert_eq!(to_epoch(&from_epoch(secs)).unwrap(), secs);
        }
        assert_eq!(to_epoch("2024-05-01T12:00:00.999+02:00").unwrap(), to_epoch("2024-05-01T10:00:00Z").unwrap());
        assert_eq!(to_epoch("1970-01-01T00:00:00-01:30").unwrap(), 5400);
    }
}
