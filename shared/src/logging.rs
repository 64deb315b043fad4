//! Text from outside (partners' product ids, titles and error bodies, panic messages that may
//! quote them) in log lines. Such text is escaped and cut before it is logged: a newline in a
//! product id must not forge a log line of its own, an escape sequence must not repaint a
//! terminal, and a long string must not flood the logs.

use std::fmt;

/// The most characters of one outside string a log line carries.
pub const MAX_LOGGED_CHARS: usize = 200;

/// Displays an outside string escaped (control characters as `\n`, `\u{1b}`, ...) and cut to
/// [`MAX_LOGGED_CHARS`]: `tracing::info!(product_id = %Untrusted(&id), ...)`.
pub struct Untrusted<'a>(pub &'a str);

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0, MAX_LOGGED_CHARS)
    }
}

/// Writes `text` with its control characters escaped, cut after `max_chars` characters (the
/// cut says how many were left out).
pub fn write_escaped(out: &mut impl fmt::Write, text: &str, max_chars: usize) -> fmt::Result {
    let mut chars = text.chars();
    for c in chars.by_ref().take(max_chars) {
        if c.is_control() {
            write!(out, "{}", c.escape_default())?;
        } else {
            out.write_char(c)?;
        }
    }
    match chars.count() {
        0 => Ok(()),
        more => write!(out, "…({more} more characters)"),
    }
}

/// The text of a panic payload (`panic!` with a literal or a formatted message), for the log
/// line that reports it (a job's or a request's).
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_long_text_is_cut() {
        assert_eq!(
            Untrusted("a\nb\r\u{1b}[31mc\td").to_string(),
            "a\\nb\\r\\u{1b}[31mc\\td"
        );
        assert_eq!(Untrusted("plain ünïcode").to_string(), "plain ünïcode");
        let long = "x".repeat(MAX_LOGGED_CHARS + 56);
        assert_eq!(
            Untrusted(&long).to_string(),
            format!("{}…(56 more characters)", "x".repeat(MAX_LOGGED_CHARS))
        );
        assert_eq!(
            Untrusted(&"y".repeat(MAX_LOGGED_CHARS)).to_string(),
            "y".repeat(MAX_LOGGED_CHARS)
        );
    }
}
