//! Secrets never appear in output: every value opsctl knows to be secret (credentials
//! from `*_env` variables, passwords in URLs, auth headers, generated secrets) is
//! registered here, and every output path (human, JSON, record, plan, errors) passes
//! its text through [`Redactor`].

use std::sync::{Arc, RwLock};

use aho_corasick::AhoCorasick;
use serde_json::Value;

/// What a secret is replaced with.
pub const MASK: &str = "***";
/// Outputs cut at a size limit are read this far past it first, so a secret that
/// crosses the limit is still whole when it is masked (then the text is cut).
pub const CUT_SLACK: usize = 64 * 1024;

/// Values shorter than this are not treated as secrets: masking every "ab" in the
/// output would hide everything and protect nothing.
pub const MIN_SECRET_LEN: usize = 4;

#[derive(Default)]
struct Inner {
    secrets: Vec<String>,
    matcher: Option<AhoCorasick>,
}

/// The run's set of secrets. Cheap to share; adding rebuilds one matcher.
#[derive(Default, Clone)]
pub struct Redactor {
    inner: Arc<RwLock<Inner>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redactor(..)")
    }
}

impl Redactor {
    pub fn new() -> Redactor {
        Redactor::default()
    }

    /// Registers a secret together with the forms it travels in (percent-encoded,
    /// base64).
    pub fn add(&self, secret: &str) {
        let secret = secret.trim_matches(['\r', '\n']);
        if secret.len() < MIN_SECRET_LEN {
            return;
        }
        let mut forms = vec![secret.to_string()];
        let encoded = percent_encode(secret);
        if encoded != secret {
            forms.push(encoded);
        }
        if let Ok(decoded) = percent_decode(secret) {
            if decoded != secret && decoded.len() >= MIN_SECRET_LEN {
                forms.push(decoded);
            }
        }
        let Ok(mut inner) = self.inner.write() else {
            return;
        };
        let before = inner.secrets.len();
        for f in forms {
            if !inner.secrets.contains(&f) {
                inner.secrets.push(f);
            }
        }
        if inner.secrets.len() != before {
            // Longest first, so a secret containing another is masked whole.
            inner.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
            inner.matcher = AhoCorasick::builder()
                .match_kind(aho_corasick::MatchKind::LeftmostLongest)
                .build(&inner.secrets)
                .ok();
        }
    }

    /// Registers `user:password` as sent in Basic auth, and the password itself.
    pub fn add_basic(&self, user: &str, password: &str) {
        use base64::Engine;
        self.add(password);
        self.add(&base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")));
    }

    /// Registers the password of a URL (`scheme://user:password@host`).
    pub fn add_url_password(&self, url: &str) {
        if let Some((user, password)) = url_credentials(url) {
            self.add_basic(&user, &password);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.inner.read().map_or(true, |i| i.secrets.is_empty())
    }

    /// Whether the text holds a secret the run knows.
    pub fn contains_secret(&self, text: &str) -> bool {
        self.inner.read().map_or(true, |i| {
            i.matcher.as_ref().is_some_and(|m| m.is_match(text))
        })
    }

    /// The text with every secret replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let Ok(inner) = self.inner.read() else {
            return MASK.to_string();
        };
        match &inner.matcher {
            Some(m) if m.is_match(text) => m.replace_all(text, &vec![MASK; inner.secrets.len()]),
            _ => text.to_string(),
        }
    }

    /// `text` masked, then cut to at most `max` bytes (at a character boundary). Text that
    /// fits is returned as it is: it is masked where it leaves the run, like every output.
    pub fn redact_cut(&self, text: &str, max: usize) -> String {
        if text.len() <= max {
            return text.to_string();
        }
        let masked = self.redact(text);
        let mut end = max.min(masked.len());
        while !masked.is_char_boundary(end) {
            end -= 1;
        }
        masked[..end].to_string()
    }

    /// A value as compact JSON text for a message, redacted *before* it is cut to `max`
    /// characters (cutting first could leave part of a secret that no longer matches).
    pub fn clipped(&self, value: &Value, max: usize) -> String {
        let mut v = value.clone();
        self.redact_json(&mut v);
        clip(&v.to_string(), max)
    }

    /// Registers the credentials visible in resolved arguments: passwords in URLs and the
    /// values of credential headers (`headers: {Authorization: ...}`). Done before any
    /// event shows the arguments.
    pub fn add_from_args(&self, args: &Value) {
        match args {
            Value::String(s) if s.contains("://") => self.add_url_password(s),
            Value::Array(items) => items.iter().for_each(|v| self.add_from_args(v)),
            Value::Object(map) => {
                for (k, v) in map {
                    if k == "headers" {
                        for (name, value) in v.as_object().into_iter().flatten() {
                            if is_credential_header(name) {
                                self.add(&crate::expr::text_of(value));
                            }
                        }
                    }
                    self.add_from_args(v);
                }
            }
            _ => {}
        }
    }

    /// Registers every credential that arguments as written can reach, before anything
    /// runs: the values of the environment variables named by `*_env` keys
    /// (`auth: {bearer_env: TOKEN}`), passwords in URLs, credential headers.
    pub fn add_reachable(&self, written: &Value) {
        fn env_values(v: &Value, r: &Redactor) {
            match v {
                Value::Object(map) => {
                    for (k, v) in map {
                        match v {
                            Value::String(var) if k.ends_with("_env") => {
                                if let Ok(secret) = std::env::var(var) {
                                    r.add(&secret);
                                }
                            }
                            other => env_values(other, r),
                        }
                    }
                }
                Value::Array(items) => items.iter().for_each(|i| env_values(i, r)),
                _ => {}
            }
        }
        env_values(written, self);
        self.add_from_args(written);
    }

    /// Redacts every string in a JSON value (keys too), in place.
    pub fn redact_json(&self, value: &mut Value) {
        if self.is_empty() {
            return;
        }
        match value {
            Value::String(s) => {
                let r = self.redact(s);
                if r != *s {
                    *s = r;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_json(v)),
            Value::Object(map) => {
                let needs_key_change = map.keys().any(|k| self.redact(k) != *k);
                if needs_key_change {
                    let old = std::mem::take(map);
                    for (k, mut v) in old {
                        self.redact_json(&mut v);
                        map.insert(self.redact(&k), v);
                    }
                } else {
                    map.values_mut().for_each(|v| self.redact_json(v));
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

static URL_PASSWORD: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r#"([A-Za-z][A-Za-z0-9+.-]*://[^\s/@:"']*:)[^\s/@"']+@"#)
        .expect("static regex")
});

/// Masks the password of every URL in `text` (`scheme://user:***@host`): for output that
/// quotes files, such as diagnostics showing a line of a config with a literal URL.
pub fn mask_url_passwords(text: &str) -> String {
    URL_PASSWORD.replace_all(text, "${1}***@").into_owned()
}

/// `text` cut to `max` characters with an ellipsis.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// Header names whose values are credentials.
pub fn is_credential_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie"
    ) || n.contains("api-key")
        || n.contains("apikey")
        || n.contains("token")
        || n.contains("secret")
        || n.contains("password")
}

/// `(user, password)` from a URL's userinfo, percent-decoded.
pub fn url_credentials(url: &str) -> Option<(String, String)> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    let (user, password) = userinfo.split_once(':')?;
    if password.is_empty() {
        return None;
    }
    let user = percent_decode(user).unwrap_or_else(|_| user.to_string());
    let password = percent_decode(password).unwrap_or_else(|_| password.to_string());
    Some((user, password))
}

/// A URL with its password replaced by `***` (for messages built before redaction).
pub fn mask_url(url: &str) -> String {
    match url_credentials(url) {
        Some(_) => {
            let Some((scheme, rest)) = url.split_once("://") else {
                return url.to_string();
            };
            let (authority, tail) = match rest.find(['/', '?', '#']) {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => {
                    let user = userinfo.split(':').next().unwrap_or("");
                    format!("{scheme}://{user}:{MASK}@{host}{tail}")
                }
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> Result<String, ()> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or(())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_registered_secrets_and_their_forms() {
        let r = Redactor::new();
        r.add("s3cr3t/pw");
        assert_eq!(r.redact("token=s3cr3t/pw;"), "token=***;");
        assert_eq!(r.redact("url=x://u:s3cr3t%2Fpw@h"), "url=x://u:***@h");
        let mut v = json!({"a": ["s3cr3t/pw", 1], "s3cr3t/pw": true});
        r.redact_json(&mut v);
        assert_eq!(v, json!({"a": ["***", 1], "***": true}));
    }

    #[test]
    fn masks_url_passwords_in_text() {
        assert_eq!(
            mask_url_passwords("4 | url: \"postgres://app:hunter22@db:5432/x\" and redis://:pw@h"),
            "4 | url: \"postgres://app:***@db:5432/x\" and redis://:***@h"
        );
        assert_eq!(
            mask_url_passwords("https://example.com/a:b@c"),
            "https://example.com/a:b@c"
        );
    }

    #[test]
    fn url_passwords() {
        assert_eq!(
            url_credentials("postgres://app:p%40ss@db:5432/x"),
            Some(("app".into(), "p@ss".into()))
        );
        assert_eq!(
            mask_url("redis://:hunter22@h:6379/0"),
            "redis://:***@h:6379/0"
        );
        assert_eq!(mask_url("https://h/x"), "https://h/x");
    }
}
