//! Contact domain types, validated at the edge: a [`ContactInput`] always has a plausible
//! email (lower-cased) and only the fields HubSpot is sent.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A syntactically valid, lower-cased email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let candidate = raw.trim().to_lowercase();
        let ok = candidate.parse::<email_address::EmailAddress>().is_ok()
            && candidate
                .rsplit_once('@')
                .is_some_and(|(_, domain)| domain.contains('.'));
        if ok {
            Ok(Self(candidate))
        } else {
            Err("email: not a valid email address (expected something like ada@example.com)".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The body of `POST /api/hubspot/test`: unknown fields are refused, not ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactRequest {
    pub email: String,
    #[serde(default)]
    pub firstname: Option<String>,
    #[serde(default)]
    pub lastname: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub company: Option<String>,
}

/// A contact ready to be written to HubSpot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactInput {
    pub email: Email,
    /// HubSpot property name → value (email excluded: it is the upsert key).
    pub properties: BTreeMap<&'static str, String>,
}

const MAX_FIELD: usize = 256;

impl TryFrom<ContactRequest> for ContactInput {
    type Error = String;

    fn try_from(req: ContactRequest) -> Result<Self, String> {
        let email = Email::parse(&req.email)?;
        let mut properties = BTreeMap::new();
        for (name, value) in [
            ("firstname", req.firstname),
            ("lastname", req.lastname),
            ("phone", req.phone),
            ("company", req.company),
        ] {
            let Some(value) = value
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
            else {
                continue;
            };
            if value.chars().count() > MAX_FIELD {
                return Err(format!("{name}: longer than {MAX_FIELD} characters"));
            }
            properties.insert(name, value);
        }
        Ok(Self { email, properties })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_and_lower_cased() {
        assert_eq!(
            Email::parse(" Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
        ] {
            assert!(
                Email::parse(bad).unwrap_err().starts_with("email:"),
                "{bad}"
            );
        }
    }

    #[test]
    fn fields_are_trimmed_blank_ones_dropped_long_ones_refused() {
        let req = ContactRequest {
            email: "a@b.co".into(),
            firstname: Some("  Ada ".into()),
            lastname: Some("   ".into()),
            phone: None,
            company: Some("x".repeat(257)),
        };
        assert_eq!(
            ContactInput::try_from(req).unwrap_err(),
            "company: longer than 256 characters"
        );
        let req = ContactRequest {
            email: "a@b.co".into(),
            firstname: Some("  Ada ".into()),
            lastname: Some(" ".into()),
            phone: None,
            company: None,
        };
        let c = ContactInput::try_from(req).unwrap();
        assert_eq!(
            c.properties,
            BTreeMap::from([("firstname", "Ada".to_string())])
        );
    }
}
