//! Durations on the command line (`500ms`, `30s`, `5m`, `1h`) and in messages.

use std::time::Duration;

/// Parses a whole number followed by a unit: `ms`, `s`, `m` or `h`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let invalid = || {
        "expected a whole number and a unit (ms, s, m or h), like 500ms, 30s, 5m or 1h".to_string()
    };
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(invalid()),
    };
    number
        .checked_mul(unit_ms)
        .map(Duration::from_millis)
        .ok_or_else(|| "too long".to_string())
}

/// A remaining time as people read it, rounded: `850 ms`, `12 s`, `14 min`, `3 h`.
pub fn describe(duration: Duration) -> String {
    let rounded = |unit: u128| (duration.as_millis() + unit / 2) / unit;
    match duration.as_millis() {
        0..1_000 => format!("{} ms", duration.as_millis()),
        1_000..120_000 => format!("{} s", rounded(1_000)),
        120_000..7_200_000 => format!("{} min", rounded(60_000)),
        _ => format!("{} h", rounded(3_600_000)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3_600)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for text in [
            "",
            "30",
            "s",
            "1.5s",
            "-1s",
            "5 m",
            "5M",
            "1d",
            "ms30",
            "99999999999999999999h",
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn descriptions() {
        assert_eq!(describe(Duration::from_millis(850)), "850 ms");
        assert_eq!(describe(Duration::from_millis(9_981)), "10 s");
        assert_eq!(describe(Duration::from_millis(12_400)), "12 s");
        assert_eq!(describe(Duration::from_secs(14 * 60 + 5)), "14 min");
        assert_eq!(describe(Duration::from_secs(3 * 3_600 + 1)), "3 h");
    }
}
