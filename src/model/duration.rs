//! Durations as runbooks write them: `500ms`, `30s`, `5m`, `1h`, `1m30s`.

use std::time::Duration;

/// Parses a duration; the error says what is wrong in words an author can act on.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".to_string());
    }
    if s.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "`{s}` has no unit; write e.g. `{s}s` (units: ms, s, m, h)"
        ));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("`{s}` is not a duration (e.g. 500ms, 30s, 5m, 1h)"));
        }
        let number: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{s}` is not a duration (e.g. 500ms, 30s, 5m, 1h)"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let factor = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("`{s}` has no unit (units: ms, s, m, h)")),
            other => {
                return Err(format!(
                    "`{other}` is not a duration unit in `{s}` (units: ms, s, m, h)"
                ));
            }
        };
        let secs = number * factor;
        if !secs.is_finite() || secs > 366.0 * 24.0 * 3600.0 {
            return Err(format!("`{s}` is too long"));
        }
        total += Duration::from_secs_f64(secs);
    }
    Ok(total)
}

/// Renders a duration the way a runbook would write it.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "0s".to_string()
    } else if ms % 3_600_000 == 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms % 60_000 == 0 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("30").unwrap_err().contains("no unit"));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("3d").is_err());
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
    }
}
