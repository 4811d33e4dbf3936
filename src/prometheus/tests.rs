//! Tests of the Prometheus text parser: the format's corners, errors with line numbers,
//! and a no-panic property over mutated expositions.

use super::*;

const API_METRICS: &str = r#"# HELP tg_tinker_requests_total Total API requests handled.
# TYPE tg_tinker_requests_total counter
tg_tinker_requests_total{method="GET",endpoint="/v1/x",status="200"} 1027
tg_tinker_requests_total{method="POST",endpoint="/v1/x",status="201"} 96
tg_tinker_requests_total{method="GET",endpoint="/v1/y",status="500"} 3
# HELP tg_tinker_queue_depth Jobs waiting in the queue by status.
# TYPE tg_tinker_queue_depth gauge
tg_tinker_queue_depth{status="pending"} 12
tg_tinker_queue_depth{status="running"} 4
# HELP http_request_duration_seconds Request latency.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="0.1"} 33444
http_request_duration_seconds_bucket{le="0.2"} 100392
http_request_duration_seconds_bucket{le="0.5"} 129389
http_request_duration_seconds_bucket{le="1"} 133988
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320
# HELP rpc_duration_seconds A summary of the RPC duration in seconds.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.01"} 3102
rpc_duration_seconds{quantile="0.5"} 4773
rpc_duration_seconds{quantile="0.99"} 76656
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
# A plain comment.
process_start_time_seconds 1.7e9 1395066363000
up 1
"#;

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn parse_ok(text: &str) -> Exposition {
    match parse(text) {
        Ok(expo) => expo,
        Err(e) => panic!("unexpected parse error: {e}\ninput:\n{text}"),
    }
}

fn only_sample(text: &str) -> Sample {
    let expo = parse_ok(text);
    assert_eq!(expo.samples.len(), 1, "{text}");
    expo.samples[0].clone()
}

fn parse_err(text: &str) -> (usize, String) {
    match parse(text) {
        Ok(expo) => panic!("expected an error, parsed {expo:?}\ninput:\n{text}"),
        Err(ParseError::Syntax { line, message }) => (line, message),
    }
}

fn assert_err(text: &str, line: usize, needle: &str) {
    let (got_line, message) = parse_err(text);
    assert_eq!(got_line, line, "wrong line for {text:?}: {message}");
    assert!(
        message.contains(needle),
        "message {message:?} lacks {needle:?} for input {text:?}"
    );
}

// --- samples -------------------------------------------------------------------------

#[test]
fn parses_the_realistic_exposition() {
    let expo = parse_ok(API_METRICS);
    assert_eq!(expo.samples.len(), 20);
    assert_eq!(expo.types.len(), 4);
    assert_eq!(expo.help.len(), 4);
    assert_eq!(
        expo.samples[0],
        Sample {
            name: "tg_tinker_requests_total".into(),
            labels: pairs(&[("method", "GET"), ("endpoint", "/v1/x"), ("status", "200")]),
            value: 1027.0,
            timestamp_ms: None,
        }
    );
    assert_eq!(
        expo.types.get("tg_tinker_requests_total"),
        Some(&MetricType::Counter)
    );
    assert_eq!(
        expo.types.get("tg_tinker_queue_depth"),
        Some(&MetricType::Gauge)
    );
    assert_eq!(
        expo.help.get("tg_tinker_queue_depth").map(String::as_str),
        Some("Jobs waiting in the queue by status.")
    );
}

#[test]
fn counter_and_gauge_without_labels() {
    let expo = parse_ok("# TYPE a counter\na 5\n# TYPE b gauge\nb -3.5\n");
    assert_eq!(expo.samples.len(), 2);
    assert_eq!(expo.samples[0].name, "a");
    assert!(expo.samples[0].labels.is_empty());
    assert_eq!(expo.samples[0].value, 5.0);
    assert_eq!(expo.samples[1].value, -3.5);
    assert_eq!(expo.types.get("a"), Some(&MetricType::Counter));
    assert_eq!(expo.types.get("b"), Some(&MetricType::Gauge));
}

#[test]
fn gauge_with_labels_and_colons_in_name() {
    let s = only_sample("job:queue_depth:avg5m{status=\"pending\",shard=\"a1\"} 12\n");
    assert_eq!(s.name, "job:queue_depth:avg5m");
    assert_eq!(s.labels, pairs(&[("status", "pending"), ("shard", "a1")]));
    assert_eq!(s.label("shard"), Some("a1"));
    assert_eq!(s.label("nope"), None);
}

#[test]
fn label_value_escapes() {
    let s = only_sample(r#"m{a="say \"hi\"",b="C:\\DIR\\FILE",c="two\nlines"} 1"#);
    assert_eq!(s.label("a"), Some("say \"hi\""));
    assert_eq!(s.label("b"), Some("C:\\DIR\\FILE"));
    assert_eq!(s.label("c"), Some("two\nlines"));
}

#[test]
fn unknown_escapes_are_kept_literally() {
    let s = only_sample(r#"m{a="tab\there",b="\é",c="end\\"} 1"#);
    assert_eq!(s.label("a"), Some("tab\\there"));
    assert_eq!(s.label("b"), Some("\\é"));
    assert_eq!(s.label("c"), Some("end\\"));
}

#[test]
fn label_values_with_punctuation_and_unicode() {
    let s =
        only_sample(r#"m{q="a,b}c=d {x}",u="Grüße 🚀 日本",empty="",sp="  lead and trail  "} 7"#);
    assert_eq!(s.label("q"), Some("a,b}c=d {x}"));
    assert_eq!(s.label("u"), Some("Grüße 🚀 日本"));
    assert_eq!(s.label("empty"), Some(""));
    assert_eq!(s.label("sp"), Some("  lead and trail  "));
    assert_eq!(s.value, 7.0);
}

#[test]
fn histogram_family() {
    let expo = parse_ok(API_METRICS);
    assert_eq!(
        expo.types.get("http_request_duration_seconds"),
        Some(&MetricType::Histogram)
    );
    let buckets = expo.select("http_request_duration_seconds_bucket", &[]);
    assert_eq!(buckets.len(), 6);
    let inf = expo.select(
        "http_request_duration_seconds_bucket",
        &pairs(&[("le", "+Inf")]),
    );
    assert_eq!(inf.len(), 1);
    assert_eq!(inf[0].value, 144320.0);
    let half = expo.select(
        "http_request_duration_seconds_bucket",
        &pairs(&[("le", "0.5")]),
    );
    assert_eq!(half.len(), 1);
    assert_eq!(half[0].value, 129389.0);
    let sum = expo.select("http_request_duration_seconds_sum", &[]);
    assert_eq!(sum.len(), 1);
    assert_eq!(sum[0].value, 53423.0);
    let count = expo.select("http_request_duration_seconds_count", &[]);
    assert_eq!(count[0].value, 144320.0);
    // The bare family name has no samples of its own.
    assert!(expo.select("http_request_duration_seconds", &[]).is_empty());
}

#[test]
fn summary_with_quantiles() {
    let expo = parse_ok(API_METRICS);
    assert_eq!(
        expo.types.get("rpc_duration_seconds"),
        Some(&MetricType::Summary)
    );
    let quantiles = expo.select("rpc_duration_seconds", &[]);
    assert_eq!(quantiles.len(), 3);
    let p99 = expo.select("rpc_duration_seconds", &pairs(&[("quantile", "0.99")]));
    assert_eq!(p99.len(), 1);
    assert_eq!(p99[0].value, 76656.0);
    let sum = expo.select("rpc_duration_seconds_sum", &[]);
    assert_eq!(sum[0].value, 1.7560473e7);
}

#[test]
fn family_type_maps_suffixed_series_to_their_family() {
    let expo = parse_ok(API_METRICS);
    let histogram = Some(MetricType::Histogram);
    let summary = Some(MetricType::Summary);
    assert_eq!(
        expo.family_type("http_request_duration_seconds_bucket"),
        histogram
    );
    assert_eq!(
        expo.family_type("http_request_duration_seconds_count"),
        histogram
    );
    assert_eq!(expo.family_type("rpc_duration_seconds"), summary);
    assert_eq!(expo.family_type("rpc_duration_seconds_sum"), summary);
    // Summaries have no buckets; undeclared names have no type.
    assert_eq!(expo.family_type("rpc_duration_seconds_bucket"), None);
    assert_eq!(expo.family_type("up"), None);
    // A counter named x does not claim x_count.
    let expo = parse_ok("# TYPE x counter\nx 1\nx_count 2\n");
    assert_eq!(expo.family_type("x_count"), None);
    assert_eq!(expo.family_type("x"), Some(MetricType::Counter));
}

#[test]
fn special_float_values() {
    let text = "a NaN\nb +Inf\nc -Inf\nd Inf\ne inf\nf -infinity\ng nan\nh +Infinity\n";
    let expo = parse_ok(text);
    let v: Vec<f64> = expo.samples.iter().map(|s| s.value).collect();
    assert!(v[0].is_nan());
    assert_eq!(v[1], f64::INFINITY);
    assert_eq!(v[2], f64::NEG_INFINITY);
    assert_eq!(v[3], f64::INFINITY);
    assert_eq!(v[4], f64::INFINITY);
    assert_eq!(v[5], f64::NEG_INFINITY);
    assert!(v[6].is_nan());
    assert_eq!(v[7], f64::INFINITY);
}

#[test]
fn numeric_value_forms() {
    let cases: &[(&str, f64)] = &[
        ("0", 0.0),
        ("42", 42.0),
        ("-7", -7.0),
        ("+7", 7.0),
        ("007", 7.0),
        ("3.25", 3.25),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e3", 1000.0),
        ("1E-3", 0.001),
        ("-2.5e+2", -250.0),
        ("1.7560473e+07", 1.7560473e7),
        ("1e-400", 0.0),
        ("9007199254740993", 9007199254740992.0),
    ];
    for (text, want) in cases {
        let s = only_sample(&format!("m {text}\n"));
        assert_eq!(s.value, *want, "value {text}");
    }
    assert!(only_sample("m -0\n").value.is_sign_negative());
}

#[test]
fn rejected_value_forms() {
    for bad in [
        "abc", "1_000", "0x1p-2", "0x10", "+NaN", "-nan", "1e", "e5", ".", "--1", "1..2", "1e400",
        "-1e400", "infinit", "Infx", "1,5", "١",
    ] {
        let (line, message) = parse_err(&format!("ok 1\nm {bad}\n"));
        assert_eq!(line, 2, "{bad}: {message}");
        assert!(message.contains("invalid value"), "{bad}: {message}");
    }
    assert_err("m 1e400\n", 1, "out of range");
    assert_err(
        "m abc\n",
        1,
        "invalid value \"abc\" for \"m\": not a number",
    );
}

#[test]
fn timestamps() {
    let s = only_sample("m{a=\"b\"} 1 1395066363000\n");
    assert_eq!(s.timestamp_ms, Some(1_395_066_363_000));
    assert_eq!(only_sample("m 1 -1500\n").timestamp_ms, Some(-1500));
    assert_eq!(only_sample("m 1 +15\n").timestamp_ms, Some(15));
    assert_eq!(only_sample("m 1\t\t0\t\n").timestamp_ms, Some(0));
    assert_eq!(only_sample("m 1\n").timestamp_ms, None);
    assert_eq!(
        only_sample("m 1 9223372036854775807\n").timestamp_ms,
        Some(i64::MAX)
    );
}

#[test]
fn comments_help_and_type() {
    let text = "\
#plain comment without a blank
# another comment
#HELP not_help this is a comment, as in the Prometheus server
# HELPx not_help
# HELP
# TYPE
# HELP m Line one\\nline two \\\\ backslash \\t kept
# HELP empty_help
# TYPE m gauge
# TYPE u untyped
  # indented comment
m 1
";
    let expo = parse_ok(text);
    assert_eq!(expo.samples.len(), 1);
    assert_eq!(
        expo.help.get("m").map(String::as_str),
        Some("Line one\nline two \\ backslash \\t kept")
    );
    // No text: a comment, as in Go's parser; no help recorded.
    assert!(!expo.help.contains_key("empty_help"));
    assert!(!expo.help.contains_key("not_help"));
    assert_eq!(expo.types.get("m"), Some(&MetricType::Gauge));
    assert_eq!(expo.types.get("u"), Some(&MetricType::Untyped));
    assert_eq!(expo.types.len(), 2);
}

#[test]
fn help_text_keeps_inner_and_trailing_blanks() {
    let expo = parse_ok("# HELP m \t  spaced   out  \n");
    assert_eq!(
        expo.help.get("m").map(String::as_str),
        Some("spaced   out  ")
    );
}

#[test]
fn trailing_comma_empty_set_and_blanks_inside_braces() {
    let s = only_sample("m{a=\"1\",b=\"2\",} 3\n");
    assert_eq!(s.labels, pairs(&[("a", "1"), ("b", "2")]));
    let s = only_sample("m{} 3\n");
    assert!(s.labels.is_empty());
    let s = only_sample("m { a = \"1\" ,\tb=\"2\" , } 3\n");
    assert_eq!(s.labels, pairs(&[("a", "1"), ("b", "2")]));
    let s = only_sample("m{a=\"1\"}3\n");
    assert_eq!(s.value, 3.0);
    let s = only_sample("   m{a=\"1\"} \t 3 \t 4  \n");
    assert_eq!((s.value, s.timestamp_ms), (3.0, Some(4)));
}

#[test]
fn crlf_line_endings() {
    let text = API_METRICS.replace('\n', "\r\n");
    assert_eq!(parse_ok(&text), parse_ok(API_METRICS));
    let expo = parse_ok("# HELP m Help.\r\n# TYPE m counter\r\nm{a=\"x\"} 1 2\r\n");
    assert_eq!(expo.help.get("m").map(String::as_str), Some("Help."));
    assert_eq!(expo.samples[0].timestamp_ms, Some(2));
    assert_eq!(expo.samples[0].label("a"), Some("x"));
}

#[test]
fn empty_input_blank_lines_and_missing_final_newline() {
    assert_eq!(parse_ok(""), Exposition::default());
    assert_eq!(parse_ok("\n\n  \t\n\r\n"), Exposition::default());
    let expo = parse_ok("\n\na 1\n\nb 2");
    assert_eq!(expo.samples.len(), 2);
    assert_eq!(expo.samples[1].value, 2.0);
}

#[test]
fn duplicate_series_are_kept_in_order() {
    let expo = parse_ok("m{a=\"1\"} 1\nm{a=\"1\"} 2\n");
    let values: Vec<f64> = expo.samples.iter().map(|s| s.value).collect();
    assert_eq!(values, [1.0, 2.0]);
}

#[test]
fn type_may_follow_samples() {
    // The spec asks for TYPE first, but the Prometheus server does not enforce it.
    let expo = parse_ok("m 1\n# TYPE m gauge\n");
    assert_eq!(expo.types.get("m"), Some(&MetricType::Gauge));
}

// --- errors --------------------------------------------------------------------------

#[test]
fn error_unterminated_label_value() {
    assert_err(
        "ok 1\nm{a=\"open} 1\n",
        2,
        "unterminated value of label \"a\"",
    );
    assert_err("m{a=\"ends in backslash\\", 1, "unterminated value");
    assert_err("m{a=\"escaped quote\\\"} 1\n", 1, "unterminated value");
}

#[test]
fn error_missing_value() {
    assert_err("a 1\nb 2\nm\n", 3, "missing value for \"m\"");
    assert_err("m   \n", 1, "missing value");
    assert_err("m{a=\"b\"}\n", 1, "missing value");
    assert_err("m{a=\"b\"}   \r\n", 1, "missing value");
}

#[test]
fn error_bad_float() {
    assert_err(
        "# TYPE m gauge\nm{a=\"b\"} abc\n",
        2,
        "invalid value \"abc\"",
    );
}

#[test]
fn error_bad_metric_name() {
    assert_err("1abc 1\n", 1, "invalid metric name \"1abc\"");
    assert_err(
        "foo.bar 1\n",
        1,
        "invalid character '.' in metric name \"foo\"",
    );
    assert_err("foo-bar 1\n", 1, "invalid character '-'");
    assert_err("x 1\nfoé 1\n", 2, "invalid character 'é'");
    assert_err("{a=\"b\"} 1\n", 1, "expected metric name, found '{'");
    assert_err("\"quoted\" 1\n", 1, "expected metric name");
}

#[test]
fn error_bad_label_syntax() {
    assert_err("m{1a=\"b\"} 1\n", 1, "invalid label name \"1a\"");
    assert_err("m{a-b=\"c\"} 1\n", 1, "expected '=' after label name \"a\"");
    assert_err("m{,} 1\n", 1, "expected label name, found ','");
    assert_err("m{a=\"b\",,} 1\n", 1, "expected label name");
    assert_err(
        "m{a=b} 1\n",
        1,
        "expected '\"' to open the value of label \"a\"",
    );
    assert_err("m{a} 1\n", 1, "expected '='");
    assert_err("m{a=\"b\" c=\"d\"} 1\n", 1, "expected ',' or '}'");
    assert_err("m{a=\"b\"", 1, "unterminated label set");
    assert_err("m{a=\"b\",", 1, "unterminated label set");
    assert_err("m{", 1, "unterminated label set");
    assert_err(
        "m{a=\"1\",b=\"2\",a=\"3\"} 1\n",
        1,
        "duplicate label name \"a\"",
    );
}

#[test]
fn error_duplicate_label_among_many() {
    let mut line = String::from("m{");
    for i in 0..100 {
        line.push_str(&format!("l{i}=\"v\","));
    }
    line.push_str("l42=\"again\"} 1\n");
    assert_err(&line, 1, "duplicate label name \"l42\"");
}

#[test]
fn error_bad_timestamp_and_trailing_text() {
    assert_err("m 1 1.5\n", 1, "invalid timestamp \"1.5\"");
    assert_err("m 1 abc\n", 1, "invalid timestamp");
    assert_err("m 1 9223372036854775808\n", 1, "invalid timestamp");
    assert_err("m 1 2 3\n", 1, "unexpected text after timestamp: \"3\"");
}

#[test]
fn error_type_and_help_lines() {
    assert_err(
        "# TYPE m gauge\n# TYPE m counter\n",
        2,
        "duplicate TYPE line for \"m\"",
    );
    assert_err(
        "# HELP m a\n# HELP m b\n",
        2,
        "duplicate HELP line for \"m\"",
    );
    assert_err("# TYPE m\n", 1, "missing metric type for \"m\"");
    assert_err("# TYPE m  \t\n", 1, "missing metric type");
    assert_err("# TYPE m timer\n", 1, "unknown metric type \"timer\"");
    assert_err("# TYPE m COUNTER\n", 1, "unknown metric type");
    assert_err(
        "# TYPE m counter extra\n",
        1,
        "unexpected text after metric type",
    );
    assert_err("# TYPE 9m counter\n", 1, "invalid metric name");
    assert_err("# HELP m.x text\n", 1, "invalid character '.'");
    assert_err("# HELP {m} text\n", 1, "expected metric name");
}

#[test]
fn error_display_names_line_and_cause() {
    let err = parse("a 1\n\nb{x=\"1} 2\n").expect_err("must fail");
    assert_eq!(err.line(), 3);
    assert_eq!(
        err.to_string(),
        "line 3: unterminated value of label \"x\": missing closing '\"'"
    );
}

#[test]
fn error_messages_truncate_huge_tokens() {
    let token = "x".repeat(10_000);
    let (_, message) = parse_err(&format!("m {token}\n"));
    assert!(message.len() < 200, "{}", message.len());
    assert!(message.contains('…'));
}

// --- select / aggregate --------------------------------------------------------------

#[test]
fn select_by_name_and_partial_labels() {
    let expo = parse_ok(API_METRICS);
    let all = expo.select("tg_tinker_requests_total", &[]);
    assert_eq!(all.len(), 3);
    let get = expo.select("tg_tinker_requests_total", &pairs(&[("method", "GET")]));
    let values: Vec<f64> = get.iter().map(|s| s.value).collect();
    assert_eq!(values, [1027.0, 3.0]);
    let get_x = expo.select(
        "tg_tinker_requests_total",
        &pairs(&[("endpoint", "/v1/x"), ("method", "GET")]),
    );
    assert_eq!(get_x.len(), 1);
    assert_eq!(get_x[0].value, 1027.0);
    assert!(
        expo.select("tg_tinker_requests_total", &pairs(&[("method", "PUT")]))
            .is_empty()
    );
    assert!(
        expo.select("tg_tinker_requests_total", &pairs(&[("missing", "x")]))
            .is_empty()
    );
    // Names match exactly, never by prefix.
    assert!(expo.select("tg_tinker_requests", &[]).is_empty());
    assert!(expo.select("nope", &[]).is_empty());
}

#[test]
fn select_empty_value_matches_only_explicit_empty_label() {
    let expo = parse_ok("m{a=\"\"} 1\nm 2\n");
    let hits = expo.select("m", &pairs(&[("a", "")]));
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].value, 1.0);
}

#[test]
fn aggregates() {
    let expo = parse_ok(API_METRICS);
    let reqs = expo.select("tg_tinker_requests_total", &[]);
    assert_eq!(aggregate(&reqs, Aggregate::Sum), Some(1126.0));
    assert_eq!(aggregate(&reqs, Aggregate::Max), Some(1027.0));
    assert_eq!(aggregate(&reqs, Aggregate::Min), Some(3.0));
    assert_eq!(aggregate(&reqs, Aggregate::Count), Some(3.0));
    let avg = aggregate(&reqs, Aggregate::Avg).unwrap_or(f64::NAN);
    assert!((avg - 1126.0 / 3.0).abs() < 1e-9, "{avg}");
    let depth = expo.select("tg_tinker_queue_depth", &pairs(&[("status", "pending")]));
    assert_eq!(aggregate(&depth, Aggregate::Avg), Some(12.0));
}

#[test]
fn aggregates_of_empty_set() {
    let none: Vec<&Sample> = Vec::new();
    assert_eq!(aggregate(&none, Aggregate::Sum), Some(0.0));
    assert_eq!(aggregate(&none, Aggregate::Count), Some(0.0));
    assert_eq!(aggregate(&none, Aggregate::Max), None);
    assert_eq!(aggregate(&none, Aggregate::Min), None);
    assert_eq!(aggregate(&none, Aggregate::Avg), None);
}

#[test]
fn aggregates_with_nan_and_infinities() {
    let expo = parse_ok("m{i=\"1\"} NaN\nm{i=\"2\"} 5\nm{i=\"3\"} -2\n");
    let all = expo.select("m", &[]);
    assert!(aggregate(&all, Aggregate::Sum).is_some_and(f64::is_nan));
    assert!(aggregate(&all, Aggregate::Avg).is_some_and(f64::is_nan));
    assert_eq!(aggregate(&all, Aggregate::Max), Some(5.0));
    assert_eq!(aggregate(&all, Aggregate::Min), Some(-2.0));
    assert_eq!(aggregate(&all, Aggregate::Count), Some(3.0));

    let only_nan = parse_ok("m NaN\nm NaN\n");
    let only_nan = only_nan.select("m", &[]);
    assert!(aggregate(&only_nan, Aggregate::Max).is_some_and(f64::is_nan));

    let inf = parse_ok("m +Inf\nm 1\nm 2\n");
    let inf = inf.select("m", &[]);
    assert_eq!(aggregate(&inf, Aggregate::Sum), Some(f64::INFINITY));
    assert_eq!(aggregate(&inf, Aggregate::Avg), Some(f64::INFINITY));
    assert_eq!(aggregate(&inf, Aggregate::Max), Some(f64::INFINITY));

    let both = parse_ok("m +Inf\nm -Inf\n");
    let both = both.select("m", &[]);
    assert!(aggregate(&both, Aggregate::Sum).is_some_and(f64::is_nan));
}

#[test]
fn sum_is_compensated_and_avg_does_not_overflow() {
    let expo = parse_ok("m 1e16\nm 1\nm 1\nm -1e16\n");
    let all = expo.select("m", &[]);
    assert_eq!(aggregate(&all, Aggregate::Sum), Some(2.0));

    let expo = parse_ok("m 1.5e308\nm 1.5e308\n");
    let big = expo.select("m", &[]);
    assert_eq!(aggregate(&big, Aggregate::Sum), Some(f64::INFINITY));
    assert_eq!(aggregate(&big, Aggregate::Avg), Some(1.5e308));
}

#[test]
fn aggregate_from_str() {
    let cases = [
        ("sum", Aggregate::Sum),
        ("max", Aggregate::Max),
        ("min", Aggregate::Min),
        ("avg", Aggregate::Avg),
        ("count", Aggregate::Count),
        ("SUM", Aggregate::Sum),
        ("Avg", Aggregate::Avg),
    ];
    for (text, want) in cases {
        assert_eq!(text.parse::<Aggregate>(), Ok(want), "{text}");
    }
    for a in [
        Aggregate::Sum,
        Aggregate::Max,
        Aggregate::Min,
        Aggregate::Avg,
        Aggregate::Count,
    ] {
        assert_eq!(a.to_string().parse::<Aggregate>(), Ok(a));
    }
    let err = "mean"
        .parse::<Aggregate>()
        .expect_err("mean is not an aggregate");
    assert_eq!(err, UnknownAggregate("mean".into()));
    assert!(
        err.to_string()
            .contains("expected sum, max, min, avg or count")
    );
    assert!("".parse::<Aggregate>().is_err());
    assert!(" sum".parse::<Aggregate>().is_err());
}

#[test]
fn metric_type_display() {
    assert_eq!(MetricType::Histogram.to_string(), "histogram");
    assert_eq!(MetricType::Untyped.as_str(), "untyped");
}

// --- robustness ----------------------------------------------------------------------

/// xorshift64*: deterministic, dependency-free randomness for the mutation test.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Characters that matter to the grammar, plus some that must be rejected gracefully.
const INTERESTING: &[char] = &[
    '{', '}', '"', '\\', '=', ',', ' ', '\t', '\n', '\r', '#', '.', '-', '+', 'e', 'E', 'n', 'N',
    'I', '0', '9', '_', ':', 'a', 'é', '🚀', '\u{0}', '\u{feff}',
];

fn mutate(rng: &mut XorShift, base: &[char]) -> String {
    let mut chars = base.to_vec();
    for _ in 0..=rng.below(8) {
        let len = chars.len();
        let at = rng.below(len + 1);
        match rng.below(6) {
            0 if at < len => {
                chars.remove(at);
            }
            1 => chars.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            2 if at < len => chars[at] = INTERESTING[rng.below(INTERESTING.len())],
            3 => {
                // Duplicate a short span elsewhere, which forges plausible-looking tokens.
                let from = rng.below(len);
                let to = (from + rng.below(24)).min(len);
                let span: Vec<char> = chars[from..to].to_vec();
                let at = rng.below(chars.len() + 1);
                chars.splice(at..at, span);
            }
            4 => chars.truncate(at),
            _ if at < len => {
                let other = rng.below(len);
                chars.swap(at, other);
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

fn check_invariants(text: &str) {
    match parse(text) {
        Ok(expo) => {
            for s in &expo.samples {
                assert!(!s.name.is_empty());
                assert!(
                    s.name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
                );
                assert!(!s.name.starts_with(|c: char| c.is_ascii_digit()));
            }
        }
        Err(e) => {
            let line_count = text.split('\n').count();
            assert!(
                (1..=line_count).contains(&e.line()),
                "line {} out of 1..={line_count}",
                e.line()
            );
        }
    }
}

#[test]
fn random_mutations_never_panic() {
    let base: Vec<char> = API_METRICS.chars().collect();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut failures = 0usize;
    for _ in 0..5000 {
        let text = mutate(&mut rng, &base);
        check_invariants(&text);
        failures += usize::from(parse(&text).is_err());
    }
    // Guard against the mutator degenerating into producing only valid input.
    assert!(failures > 500, "only {failures} mutants were rejected");
}

#[test]
fn every_prefix_parses_or_fails_cleanly() {
    let text = format!("{API_METRICS}m{{u=\"Grüße 🚀\",e=\"a\\\\b\\\"c\"}} 1 2\r\n");
    for (cut, _) in text.char_indices() {
        check_invariants(&text[..cut]);
    }
}

#[test]
fn large_inputs_parse() {
    // Thousands of labels on one line and a long escaped value exercise the paths that
    // could go quadratic.
    let mut line = String::from("m{");
    for i in 0..20_000 {
        line.push_str(&format!("l{i}=\"v\","));
    }
    line.push_str("big=\"");
    line.push_str(&"\\\"x\\\\".repeat(50_000));
    line.push_str("\"} 1\n");
    let s = only_sample(&line);
    assert_eq!(s.labels.len(), 20_001);
    assert_eq!(s.label("big").map(str::len), Some(150_000));

    let body: String = (0..50_000)
        .map(|i| format!("m{{i=\"{i}\"}} {i}\n"))
        .collect();
    let expo = parse_ok(&body);
    assert_eq!(expo.samples.len(), 50_000);
    let all = expo.select("m", &[]);
    assert_eq!(
        aggregate(&all, Aggregate::Sum),
        Some(49_999.0 * 50_000.0 / 2.0)
    );
}

#[test]
fn help_without_text_is_a_comment() {
    // Before a HELP line with text: that one is the metric's only HELP.
    let expo = parse_ok("# HELP m\n# HELP m The text.\n# TYPE m gauge\nm 1\n");
    assert_eq!(expo.help.get("m").map(String::as_str), Some("The text."));
    // Blanks after the name are still no text.
    let expo = parse_ok("# HELP m \t \n# HELP m The text.\nm 1\n");
    assert_eq!(expo.help.get("m").map(String::as_str), Some("The text."));
    // After one: ignored, the text stays.
    let expo = parse_ok("# HELP m The text.\n# HELP m\nm 1\n");
    assert_eq!(expo.help.get("m").map(String::as_str), Some("The text."));
    // Alone, twice: nothing recorded, nothing duplicated.
    let expo = parse_ok("# HELP m\n# HELP m\nm 1\n");
    assert!(expo.help.is_empty());
    assert_eq!(expo.samples.len(), 1);
    // Two HELP lines with text are still the duplicate.
    assert_err(
        "# HELP m\n# HELP m a\n# HELP m b\n",
        3,
        "duplicate HELP line for \"m\"",
    );
}

/// `promtool check metrics` (Go's `expfmt` text parser plus lint rules) as the oracle: exit 0
/// or 3 (lint findings only) means it parsed, 1 means a parse error.
fn promtool_accepts(text: &str) -> bool {
    let out = promtool_check(text);
    match out.status.code() {
        Some(0 | 3) => true,
        Some(1) => false,
        other => panic!("promtool exited with {other:?}: {out:?}"),
    }
}

/// Runs `promtool check metrics` on `text`. Debian's `prometheus` package has promtool;
/// scripts/test.sh installs it when run as root. Also the oracle of `health`'s output.
pub(crate) fn promtool_check(text: &str) -> std::process::Output {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run promtool ({e}): it is the oracle for this test. Install it \
                 (Debian: apt-get install --no-install-recommends prometheus) or run \
                 scripts/test.sh as root, which installs it"
            )
        });
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes()).expect("write to promtool");
    }
    child.wait_with_output().expect("promtool output")
}

#[test]
fn help_lines_agree_with_promtool() {
    let cases: &[(&str, bool)] = &[
        ("# HELP m\n# HELP m text\nm 1\n", true),
        ("# HELP m \t\n# HELP m text\nm 1\n", true),
        ("# HELP m text\n# HELP m\nm 1\n", true),
        ("# HELP m\n# HELP m\nm 1\n", true),
        ("# HELP m\nm 1\n", true),
        ("# HELP\nm 1\n", true),
        ("# HELP m text\n# HELP m other\nm 1\n", false),
        ("# HELP m\n# HELP m a\n# HELP m b\nm 1\n", false),
        ("# HELP m a\\nb \\\\ c\n# TYPE m counter\nm 1\n", true),
        ("# TYPE m gauge\n# TYPE m counter\nm 1\n", false),
        ("# HELP m.x text\nm 1\n", false),
        (API_METRICS, true),
    ];
    for (text, accepted) in cases {
        assert_eq!(
            promtool_accepts(text),
            *accepted,
            "promtool disagrees with the case table for {text:?}"
        );
        assert_eq!(
            parse(text).is_ok(),
            *accepted,
            "we disagree with promtool for {text:?}: {:?}",
            parse(text)
        );
    }
}
