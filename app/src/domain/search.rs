//! Contact search as the outbound flow types it: a query normalized once ([`SearchQuery`]),
//! and HubSpot's free-text rule ([`matches`]) so an answer to a shorter query can answer a
//! longer one locally. HubSpot matches a contact when every word of the query starts a word
//! of one of its searchable properties (or, for phones, appears among its digits); typing more
//! only narrows that set, so the complete answer to `lov` holds every answer to `lovel`.

use serde_json::Value;

use super::privacy::PersonKey;

/// The properties HubSpot's free-text contact search looks in.
pub const SEARCHED: [&str; 6] = [
    "firstname",
    "lastname",
    "email",
    "phone",
    "mobilephone",
    "company",
];

/// Longest query accepted (a person's name or number; HubSpot allows 3000).
pub const MAX_QUERY: usize = 100;

/// A query, normalized: trimmed, lower-case, single spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    pub text: String,
    /// Who the query names, when it is a whole email or phone (E.164): the history's blind
    /// index is then the person's, so a privacy export finds the search.
    pub person: Option<PersonKey>,
}

impl SearchQuery {
    pub fn parse(raw: &str, region: phonenumber::country::Id) -> Result<Self, String> {
        let text = raw
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        if text.is_empty() || text.chars().count() > MAX_QUERY {
            return Err(format!(
                "query: give a name, an email or a phone number (1 to {MAX_QUERY} characters)"
            ));
        }
        let person = if text.contains('@') {
            super::contact::Email::parse(&text)
                .ok()
                .map(|e| PersonKey::Email(e.as_str().to_string()))
        } else if text.chars().filter(char::is_ascii_digit).count() >= 7 {
            super::contact::normalize_phone(&text, region)
                .ok()
                .map(PersonKey::Phone)
        } else {
            None
        };
        Ok(Self { text, person })
    }

    /// The shorter queries whose complete answer contains this one's, longest first: each
    /// prefix ending inside or after a word (`ada lov` → `ada lo`, `ada l`, `ada`, `ad`, `a`).
    pub fn narrower_of(&self) -> impl Iterator<Item = String> + '_ {
        let ends: Vec<usize> = self.text.char_indices().map(|(i, _)| i).skip(1).collect();
        ends.into_iter()
            .rev()
            .map(|end| self.text[..end].trim_end().to_string())
            .filter(|p| !p.is_empty())
    }
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// Whether HubSpot's free-text search for `query` (normalized) finds a contact with these
/// `properties`.
pub fn matches(query: &str, properties: &Value) -> bool {
    query.split_whitespace().all(|word| {
        SEARCHED.iter().any(|p| {
            properties[*p].as_str().is_some_and(|v| {
                let v = v.to_lowercase();
                v.starts_with(word)
                    || v.split(|c: char| !c.is_alphanumeric())
                        .any(|t| t.starts_with(word))
                    || matches!(*p, "phone" | "mobilephone")
                        && !digits(word).is_empty()
                        && digits(&v).contains(&digits(word))
            })
        })
    })
}

/// A contact as the search shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FoundContact {
    pub id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// E.164 when HubSpot's value is a valid number, else as HubSpot has it.
    pub phone: Option<String>,
    /// For people to read (`+1 415-555-0100`).
    pub phone_formatted: Option<String>,
    pub company: Option<String>,
    pub email: Option<String>,
    /// When the contact was last contacted (HubSpot's `notes_last_contacted`), else last
    /// changed.
    pub last_interaction: Option<String>,
}

impl FoundContact {
    pub fn from_hubspot(object: &Value, region: phonenumber::country::Id) -> Self {
        let p = &object["properties"];
        let text = |k: &str| p[k].as_str().filter(|v| !v.is_empty()).map(str::to_string);
        let raw_phone = text("phone").or_else(|| text("mobilephone"));
        let parsed = raw_phone
            .as_deref()
            .and_then(|r| phonenumber::parse(Some(region), r).ok())
            .filter(phonenumber::is_valid);
        Self {
            id: object["id"].as_str().unwrap_or_default().to_string(),
            first_name: text("firstname"),
            last_name: text("lastname"),
            phone: parsed
                .as_ref()
                .map(|n| n.format().mode(phonenumber::Mode::E164).to_string())
                .or(raw_phone.clone()),
            phone_formatted: parsed
                .as_ref()
                .map(|n| {
                    n.format()
                        .mode(phonenumber::Mode::International)
                        .to_string()
                })
                .or(raw_phone),
            company: text("company"),
            email: text("email"),
            last_interaction: text("notes_last_contacted")
                .or_else(|| text("lastmodifieddate"))
                .or_else(|| object["updatedAt"].as_str().map(str::to_string)),
        }
    }

    /// As the support role sees it: email and phone masked.
    pub fn masked(mut self) -> Self {
        use super::privacy::mask_phone;
        self.email = self.email.as_deref().map(crate::mask::email);
        self.phone = self.phone.as_deref().map(mask_phone);
        self.phone_formatted = self.phone_formatted.as_deref().map(mask_phone);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn queries_normalize_and_name_a_person_when_whole() {
        let q = SearchQuery::parse("  Ada   LOVE ", phonenumber::country::Id::US).unwrap();
        assert_eq!(q.text, "ada love");
        assert_eq!(q.person, None);
        let q = SearchQuery::parse("(415) 555-0100", phonenumber::country::Id::US).unwrap();
        assert_eq!(q.person, Some(PersonKey::Phone("+14155550100".into())));
        let q = SearchQuery::parse("Ada@Example.com", phonenumber::country::Id::US).unwrap();
        assert_eq!(q.person, Some(PersonKey::Email("ada@example.com".into())));
        assert!(SearchQuery::parse(" ", phonenumber::country::Id::US).is_err());
        let prefixes: Vec<String> = SearchQuery::parse("ab c", phonenumber::country::Id::US)
            .unwrap()
            .narrower_of()
            .collect();
        assert_eq!(prefixes, ["ab", "ab", "a"]);
    }

    #[test]
    fn hubspots_rule_every_word_starts_a_word_and_narrowing_keeps_a_subset() {
        let ada = json!({"firstname": "Ada", "lastname": "Lovelace", "phone": "+1 (415) 555-0100", "company": "Analytical Engines"});
        for q in [
            "ada",
            "lov",
            "ada lov",
            "engines",
            "555",
            "4155550100",
            "analytical ada",
        ] {
            assert!(matches(q, &ada), "{q}");
        }
        for q in ["velace", "ada x", "bob", "999"] {
            assert!(!matches(q, &ada), "{q}");
        }
    }
}
