//! Human durations in plan and config files: "500ms", "90s", "20m", "1h30m", "2d".
//!
//! Whole numbers only, units in any order but each at most once, no spaces, no bare numbers: a
//! bare "20" is refused because nobody can tell whether it meant seconds or minutes.

const UNITS: [(&str, u64); 5] = [
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
];

/// Parses a duration into milliseconds. The error says what is wrong, without the input (the
/// caller quotes it with its position).
pub fn parse_duration(s: &str) -> Result<u64, String> {
    if s.is_empty() {
        return Err("it is empty".to_string());
    }
    let mut total: u64 = 0;
    let mut seen: Vec<&str> = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            let c = rest.chars().next().unwrap_or(' ');
            return Err(if c == '-' {
                "a duration cannot be negative".to_string()
            } else if c == '.' || c == ',' {
                "use whole numbers, e.g. \"1m30s\" rather than \"1.5m\"".to_string()
            } else {
                format!("expected a number at `{rest}`")
            });
        }
        let value: u64 = rest[..digits]
            .parse()
            .map_err(|_| "the number is too large".to_string())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        if unit.is_empty() {
            return Err(if rest.starts_with('.') {
                "use whole numbers, e.g. \"1m30s\" rather than \"1.5m\"".to_string()
            } else if rest.is_empty() {
                "the number has no unit (ms, s, m, h or d)".to_string()
            } else {
                format!("unexpected `{rest}`")
            });
        }
        let Some(&(_, factor)) = UNITS.iter().find(|(u, _)| *u == unit) else {
            return Err(format!("unknown unit `{unit}` (use ms, s, m, h or d)"));
        };
        if seen.contains(&unit) {
            return Err(format!("the unit `{unit}` appears twice"));
        }
        seen.push(unit);
        total = value
            .checked_mul(factor)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| "the duration is too large".to_string())?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// Formats milliseconds back into the shortest string `parse_duration` reads as the same value,
/// for messages and status views: 90_000 -> "1m30s", 0 -> "0s".
pub fn format_duration(ms: u64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, factor) in UNITS.iter().rev() {
        let n = rest / factor;
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
            rest %= factor;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(parse_duration("20m"), Ok(1_200_000));
        assert_eq!(parse_duration("90s"), Ok(90_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("500ms"), Ok(500));
        assert_eq!(parse_duration("2d"), Ok(172_800_000));
        assert_eq!(parse_duration("0s"), Ok(0));
        assert_eq!(parse_duration("1m1s1ms"), Ok(61_001));
    }

    #[test]
    fn refuses_bad_forms_with_a_reason() {
        for (bad, fragment) in [
            ("", "empty"),
            ("20", "no unit"),
            ("20x", "unknown unit `x`"),
            ("1.5h", "whole numbers"),
            ("-5m", "negative"),
            ("m", "expected a number"),
            ("5m5m", "twice"),
            ("5 m", "unexpected"),
            ("99999999999999999999s", "too large"),
            ("9999999999999999d", "too large"),
        ] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.contains(fragment), "{bad:?}: {err}");
        }
    }

    #[test]
    fn formats_compactly() {
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(90_000), "1m30s");
        assert_eq!(format_duration(500), "500ms");
        assert_eq!(format_duration(5_400_000), "1h30m");
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(ms in 0u64..10_000_000_000_000) {
            prop_assert_eq!(parse_duration(&format_duration(ms)), Ok(ms));
        }
    }
}
