//! Contact domain types, validated at the edge: a [`ContactInput`] always has a plausible
//! email (lower-cased) and only the fields HubSpot is sent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A syntactically valid, lower-cased email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

/// The longest email address there is (RFC 5321's path limit less its brackets).
pub const MAX_EMAIL: usize = 254;

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let candidate = raw.trim().to_lowercase();
        if candidate.len() > MAX_EMAIL {
            return Err(format!(
                "email: longer than {MAX_EMAIL} characters, so not a deliverable address"
            ));
        }
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

/// A contact as a client sends it (`POST /api/hubspot/test`, `POST /api/contacts`): unknown
/// fields are refused, not ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactRequest {
    /// The contact's key.
    #[schema(format = "email", example = "ada@example.com", max_length = 254)] // MAX_EMAIL
    pub email: String,
    #[serde(default)]
    pub firstname: Option<String>,
    #[serde(default)]
    pub lastname: Option<String>,
    /// Any format with its country code; stored in E.164.
    #[serde(default)]
    #[schema(example = "+44 20 7946 0958")]
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

/// A phone number in E.164 (`+14155550100`), read with `region` for numbers without a country
/// code.
/// A phone as the cache indexes it: E.164 when it is written internationally (`+…`), else as
/// written, trimmed (HubSpot keeps phones as typed).
pub fn phone_key(raw: &str) -> String {
    let raw = raw.trim();
    phonenumber::parse(None, raw)
        .ok()
        .filter(phonenumber::is_valid)
        .map(|n| n.format().mode(phonenumber::Mode::E164).to_string())
        .unwrap_or_else(|| raw.to_string())
}

pub fn normalize_phone(raw: &str, region: phonenumber::country::Id) -> Result<String, String> {
    let invalid = || {
        "phone: not a valid phone number (write it with its country code, e.g. +44 20 7946 0958)"
            .to_string()
    };
    let number = phonenumber::parse(Some(region), raw.trim()).map_err(|_| invalid())?;
    if !phonenumber::is_valid(&number) {
        return Err(invalid());
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

/// The contact fields the API reads back from HubSpot.
pub const READ_PROPERTIES: &str = "email,firstname,lastname,phone,company";

/// A contact as this service shows and caches it (read from HubSpot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Contact {
    pub id: Option<String>,
    pub email: Option<String>,
    pub firstname: Option<String>,
    pub lastname: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    /// When HubSpot last changed it (RFC 3339).
    pub updated_at: Option<String>,
}

impl Contact {
    /// From a HubSpot contact object (`{id, properties, updatedAt}`).
    pub fn from_hubspot(object: &serde_json::Value) -> Self {
        let p = &object["properties"];
        let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
        Self {
            id: text(&object["id"]),
            email: text(&p["email"]),
            firstname: text(&p["firstname"]),
            lastname: text(&p["lastname"]),
            phone: text(&p["phone"]),
            company: text(&p["company"]),
            updated_at: text(&object["updatedAt"]),
        }
    }
}

impl Contact {
    /// As the support role sees it: email and phone masked.
    pub fn masked(mut self) -> Self {
        self.email = self.email.as_deref().map(crate::mask::email);
        self.phone = self.phone.as_deref().map(super::privacy::mask_phone);
        self
    }
}

impl ContactInput {
    /// Validates a request; a phone is stored in E.164.
    pub fn from_request(
        req: ContactRequest,
        region: phonenumber::country::Id,
    ) -> Result<Self, String> {
        let phone = req.phone.clone().filter(|p| !p.trim().is_empty());
        let mut input = Self::try_from(ContactRequest { phone: None, ..req })?;
        if let Some(phone) = phone {
            input
                .properties
                .insert("phone", normalize_phone(&phone, region)?);
        }
        Ok(input)
    }
}

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
    fn phones_become_e164() {
        use phonenumber::country::Id;
        assert_eq!(
            normalize_phone("+44 20 7946 0958", Id::US).unwrap(),
            "+442079460958"
        );
        assert_eq!(
            normalize_phone("(415) 555-0100", Id::US).unwrap(),
            "+14155550100"
        );
        assert_eq!(
            normalize_phone("020 7946 0958", Id::GB).unwrap(),
            "+442079460958"
        );
        assert!(normalize_phone("12", Id::US)
            .unwrap_err()
            .starts_with("phone:"));
        let req = ContactRequest {
            email: "a@b.co".into(),
            firstname: None,
            lastname: None,
            phone: Some("415 555 0100".into()),
            company: None,
        };
        assert_eq!(
            ContactInput::from_request(req, Id::US).unwrap().properties["phone"],
            "+14155550100"
        );
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
