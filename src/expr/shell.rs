//! Values in `shell:` scripts. A `${{ }}` inside a script is never pasted into the script
//! text: its value travels as an environment variable (`OPSCTL_VALUE_1`, ...) and the
//! script gets a reference to it quoted for the place where the expression sat
//! (unquoted, inside double quotes, inside single quotes), so no value can run as code.

/// Prefix of the environment variables that carry inserted values.
pub const VAR_PREFIX: &str = "OPSCTL_VALUE_";

/// How the script text is quoted at a point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quote {
    None,
    Double,
    Single,
}

/// The shell text that expands to exactly the value of variable `name` at a place quoted
/// as `q` (one word, no splitting, no globbing).
pub fn reference(name: &str, q: Quote) -> String {
    match q {
        Quote::None => format!("\"${{{name}}}\""),
        Quote::Double => format!("${{{name}}}"),
        // Close the single quotes, expand in double quotes, reopen.
        Quote::Single => format!("'\"${{{name}}}\"'"),
    }
}

enum Frame {
    Single,
    Double,
    /// `$( ... )`, with the plain parentheses opened inside it.
    Subst {
        parens: u32,
    },
    Backtick,
}

/// Follows quoting through literal script text, fed piece by piece.
#[derive(Default)]
pub struct Scanner {
    stack: Vec<Frame>,
    escaped: bool,
}

impl Scanner {
    pub fn feed(&mut self, text: &str) {
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if self.escaped {
                self.escaped = false;
                continue;
            }
            match self.stack.last_mut() {
                Some(Frame::Single) => {
                    if c == '\'' {
                        self.stack.pop();
                    }
                }
                Some(Frame::Double) => match c {
                    '\\' => self.escaped = true,
                    '"' => {
                        self.stack.pop();
                    }
                    '$' if chars.peek() == Some(&'(') => {
                        chars.next();
                        self.stack.push(Frame::Subst { parens: 0 });
                    }
                    '`' => self.stack.push(Frame::Backtick),
                    _ => {}
                },
                top => match c {
                    '\\' => self.escaped = true,
                    '\'' => self.stack.push(Frame::Single),
                    '"' => self.stack.push(Frame::Double),
                    '$' if chars.peek() == Some(&'(') => {
                        chars.next();
                        self.stack.push(Frame::Subst { parens: 0 });
                    }
                    '`' => {
                        if matches!(top, Some(Frame::Backtick)) {
                            self.stack.pop();
                        } else {
                            self.stack.push(Frame::Backtick);
                        }
                    }
                    '(' => {
                        if let Some(Frame::Subst { parens }) = top {
                            *parens += 1;
                        }
                    }
                    ')' => match top {
                        Some(Frame::Subst { parens: 0 }) => {
                            self.stack.pop();
                        }
                        Some(Frame::Subst { parens }) => *parens -= 1,
                        _ => {}
                    },
                    _ => {}
                },
            }
        }
    }

    /// The quoting at the current point.
    pub fn quote(&self) -> Quote {
        match self.stack.last() {
            Some(Frame::Single) => Quote::Single,
            Some(Frame::Double) => Quote::Double,
            _ => Quote::None,
        }
    }

    /// An inserted value ends any pending backslash escape.
    pub fn inserted(&mut self) {
        self.escaped = false;
    }
}

/// A script with values for display: each reference replaced by the value, shell-quoted.
pub fn display(script: &str, values: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut shown = script.to_string();
    for (name, value) in values.iter().rev() {
        let text = super::text_of(value);
        for q in [Quote::Single, Quote::None, Quote::Double] {
            shown = shown.replace(&reference(name, q), &quote(&text));
        }
    }
    shown
}

/// `s` as one shell word.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quote_after(text: &str) -> Quote {
        let mut s = Scanner::default();
        s.feed(text);
        s.quote()
    }

    #[test]
    fn follows_quoting() {
        assert_eq!(quote_after("echo "), Quote::None);
        assert_eq!(quote_after("echo \"a "), Quote::Double);
        assert_eq!(quote_after("echo 'a "), Quote::Single);
        assert_eq!(quote_after("echo 'a' \"b\" "), Quote::None);
        assert_eq!(quote_after("echo \"$(cat "), Quote::None);
        assert_eq!(quote_after("echo \"$(cat (x)) "), Quote::Double);
        assert_eq!(quote_after("echo \\' "), Quote::None);
        assert_eq!(quote_after("echo \"a\\\" "), Quote::Double);
        assert_eq!(quote_after("echo `x '"), Quote::Single);
    }

    /// The real shell expands every reference to exactly the value, with no code run.
    #[test]
    fn references_expand_to_the_value_in_sh() {
        let value = "x'; touch /tmp/opsctl-pwned-$$; echo \"$(id)\" `id` \\ *";
        for (before, after) in [
            ("printf %s ", ""),
            ("printf %s \"a", "b\""),
            ("printf %s 'a", "b'"),
        ] {
            let mut s = Scanner::default();
            s.feed(before);
            let script = format!("{before}{}{after}", reference("OPSCTL_VALUE_1", s.quote()));
            let out = std::process::Command::new("sh")
                .args(["-c", &script])
                .env("OPSCTL_VALUE_1", value)
                .output()
                .unwrap();
            let (pre, post) = match before.chars().last() {
                Some('a') => ("a", "b"),
                _ => ("", ""),
            };
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                format!("{pre}{value}{post}"),
                "{script}"
            );
        }
    }
}
