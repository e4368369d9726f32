//! Personal data out of logs: emails and phone numbers are masked in any text before it is
//! logged (HubSpot's own error messages quote email addresses, for one).
//!
//! `ada.lovelace@example.com` → `a***@e***.com`; `+44 20 7946 0958` → `+***58`.

use std::sync::LazyLock;

use regex::{Captures, Regex};

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)([a-z0-9._%+\-])[a-z0-9._%+\-]*@([a-z0-9])[a-z0-9\-.]*\.([a-z]{2,})")
        .expect("valid regex")
});

/// Runs of 7 or more digits, allowing the usual separators, optionally led by `+`.
static PHONE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\+?\d[\d\s().\-]{5,}\d").expect("valid regex"));

static DATE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\d{4}-\d{2}-\d{2}$").expect("valid regex"));

/// An email address, masked.
pub fn email(e: &str) -> String {
    text(e)
}

/// `text` with every email address and phone number masked. A phone number is a run of 7 or
/// more digits that starts with `+` or has separators in it; a bare digit run (a HubSpot id, a
/// timestamp) is left alone, so ids stay useful in logs.
pub fn text(text: &str) -> String {
    let masked = EMAIL.replace_all(text, |c: &Captures| {
        format!("{}***@{}***.{}", &c[1], &c[2], &c[3])
    });
    PHONE
        .replace_all(&masked, |c: &Captures| {
            let run = &c[0];
            let digits: String = run.chars().filter(char::is_ascii_digit).collect();
            let is_date = DATE.is_match(run);
            let phone_like = !is_date && (run.starts_with('+') || digits.len() != run.len());
            if digits.len() < 7 || !phone_like {
                return run.to_string();
            }
            let plus = if run.starts_with('+') { "+" } else { "" };
            format!("{plus}***{}", &digits[digits.len() - 2..])
        })
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_keep_only_first_letters_and_the_tld() {
        assert_eq!(email("ada.lovelace@example.com"), "a***@e***.com");
        assert_eq!(
            text("Property values were not valid: Email address Bob@Mail.Example.org is invalid"),
            "Property values were not valid: Email address B***@M***.org is invalid"
        );
    }

    #[test]
    fn phone_numbers_keep_only_the_last_two_digits() {
        assert_eq!(text("call +44 20 7946 0958 now"), "call +***58 now");
        assert_eq!(text("(555) 010-2000"), "(***00");
    }

    #[test]
    fn ids_timestamps_and_plain_text_are_left_alone() {
        for plain in [
            "Contact already exists. Existing ID: 37765100001",
            "took 1500 ms",
            "at 1700000000000",
            "on 2026-11-23 at noon",
        ] {
            assert_eq!(text(plain), plain);
        }
    }
}
