//! Validation of an event as the product sends it: every field checked, the first problem
//! named by its path (`data.amount`, `events[3].subject.email`).

use std::fmt;

use serde_json::{Map, Value};

use super::{Data, Event, EventType, Subject};
use crate::domain::contact::Email;

/// What is wrong with an event, and where (`events[3].data.amount`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same problem inside a batch: `events[3].data.amount`.
    pub fn at(self, index: usize) -> Self {
        Self {
            field: format!("events[{index}].{}", self.field),
            message: self.message,
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The longest id (event, user, merchant, exclusive) accepted.
const MAX_ID: usize = 200;
const TOP_FIELDS: [&str; 6] = [
    "event_id",
    "type",
    "occurred_at",
    "portal",
    "subject",
    "data",
];

fn id_text(value: &Value, field: &str) -> Result<String, Invalid> {
    let text = match value {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) if n.is_u64() => n.to_string(),
        _ => return Err(Invalid::new(field, "a string id")),
    };
    if text.is_empty() || text.len() > MAX_ID || text.chars().any(char::is_control) {
        return Err(Invalid::new(
            field,
            format!("1 to {MAX_ID} printable characters"),
        ));
    }
    Ok(text)
}

fn optional_text(map: &Map<String, Value>, key: &str, at: &str) -> Result<Option<String>, Invalid> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) if s.len() <= 500 => Ok(Some(s.trim().to_string())),
        Some(_) => Err(Invalid::new(
            format!("{at}.{key}"),
            "a string of at most 500 characters",
        )),
    }
}

fn required_id(map: &Map<String, Value>, key: &str, at: &str) -> Result<String, Invalid> {
    match map.get(key) {
        None | Some(Value::Null) => Err(Invalid::new(format!("{at}.{key}"), "required")),
        Some(v) => id_text(v, &format!("{at}.{key}")),
    }
}

fn positive(
    map: &Map<String, Value>,
    key: &str,
    at: &str,
    required: bool,
) -> Result<Option<u64>, Invalid> {
    match map.get(key) {
        None | Some(Value::Null) if !required => Ok(None),
        None | Some(Value::Null) => Err(Invalid::new(
            format!("{at}.{key}"),
            "required: a positive integer",
        )),
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => Ok(Some(n)),
            _ => Err(Invalid::new(
                format!("{at}.{key}"),
                format!("a positive integer, got {v}"),
            )),
        },
    }
}

fn email_in(map: &Map<String, Value>, key: &str, at: &str) -> Result<Option<Email>, Invalid> {
    optional_text(map, key, at)?
        .map(|raw| {
            Email::parse(&raw).map_err(|e| {
                Invalid::new(
                    format!("{at}.{key}"),
                    e.trim_start_matches("email: ").to_string(),
                )
            })
        })
        .transpose()
}

fn phone_in(map: &Map<String, Value>, key: &str, at: &str) -> Result<Option<String>, Invalid> {
    optional_text(map, key, at)?
        .map(|raw| {
            crate::domain::contact::normalize_phone(&raw, phonenumber::country::Id::US).map_err(
                |e| {
                    Invalid::new(
                        format!("{at}.{key}"),
                        e.trim_start_matches("phone: ").to_string(),
                    )
                },
            )
        })
        .transpose()
}

fn only(map: &Map<String, Value>, allowed: &[&str], at: &str) -> Result<(), Invalid> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(Invalid::new(
            format!("{at}.{k}"),
            if allowed.is_empty() {
                "unknown field; this event type has no data fields".to_string()
            } else {
                format!("unknown field; valid: {}", allowed.join(", "))
            },
        )),
    }
}

/// Epoch ms from an RFC 3339 string or an integer of epoch ms.
fn occurred_at(value: Option<&Value>) -> Result<i64, Invalid> {
    const HOW: &str = "an RFC 3339 time (2026-11-24T10:00:00Z) or epoch milliseconds";
    match value {
        None | Some(Value::Null) => Err(Invalid::new("occurred_at", format!("required: {HOW}"))),
        Some(Value::Number(n)) => n
            .as_i64()
            .filter(|ms| *ms > 0)
            .ok_or_else(|| Invalid::new("occurred_at", HOW)),
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s.trim())
            .map(|t| t.timestamp_millis())
            .map_err(|_| Invalid::new("occurred_at", format!("{HOW}, got '{s}'"))),
        Some(_) => Err(Invalid::new("occurred_at", HOW)),
    }
}

/// Validates one event as the product sends it.
pub fn parse(raw: &Value) -> Result<Event, Invalid> {
    let Some(top) = raw.as_object() else {
        return Err(Invalid::new("event", "a JSON object"));
    };
    only(top, &TOP_FIELDS, "event")
        .map_err(|e| Invalid::new(e.field.trim_start_matches("event."), e.message))?;
    let event_id = match top.get("event_id") {
        None | Some(Value::Null) => return Err(Invalid::new("event_id", "required")),
        Some(v) => id_text(v, "event_id")?,
    };
    let event_type: EventType = match top.get("type") {
        Some(Value::String(s)) => s.parse().map_err(|e: String| Invalid::new("type", e))?,
        _ => {
            return Err(Invalid::new(
                "type",
                format!("required; valid: {}", EventType::valid_list()),
            ))
        }
    };
    let occurred_at = occurred_at(top.get("occurred_at"))?;
    let portal = match top.get("portal") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|p| *p > 0)
                .ok_or_else(|| Invalid::new("portal", "a hub id, like 62515"))?,
        ),
    };
    let empty = Map::new();
    let subject_map = match top.get("subject") {
        Some(Value::Object(m)) => m,
        _ => {
            return Err(Invalid::new(
                "subject",
                "required: {external_id?, email?, phone?}",
            ))
        }
    };
    only(subject_map, &["external_id", "email", "phone"], "subject")?;
    let subject = Subject {
        external_id: match subject_map.get("external_id") {
            None | Some(Value::Null) => None,
            Some(v) => Some(id_text(v, "subject.external_id")?),
        },
        email: email_in(subject_map, "email", "subject")?,
        phone: phone_in(subject_map, "phone", "subject")?,
    };
    let data_map = match top.get("data") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(_) => return Err(Invalid::new("data", "a JSON object")),
    };
    let data = data(event_type, data_map)?;
    let event = Event {
        event_id,
        event_type,
        occurred_at,
        portal,
        subject,
        data,
    };
    if event.subject.external_id.is_none() && event.email().is_none() {
        return Err(Invalid::new(
            "subject",
            "needs external_id (the product's user id) or email",
        ));
    }
    Ok(event)
}

fn data(t: EventType, m: &Map<String, Value>) -> Result<Data, Invalid> {
    const AT: &str = "data";
    Ok(match t {
        EventType::UserSignup => {
            only(m, t.data_fields(), AT)?;
            Data::UserSignup {
                email: email_in(m, "email", AT)?,
                firstname: optional_text(m, "firstname", AT)?,
                lastname: optional_text(m, "lastname", AT)?,
                phone: phone_in(m, "phone", AT)?,
            }
        }
        EventType::OtpVerified => {
            only(m, t.data_fields(), AT)?;
            Data::OtpVerified
        }
        EventType::WalletPassInstalled => {
            only(m, t.data_fields(), AT)?;
            let platform = optional_text(m, "platform", AT)?
                .map(|p| p.to_lowercase())
                .filter(|p| matches!(p.as_str(), "apple" | "google"))
                .ok_or_else(|| Invalid::new("data.platform", "required: apple or google"))?;
            Data::WalletPassInstalled { platform }
        }
        EventType::NovaEarned | EventType::NovaRedeemed => {
            only(m, t.data_fields(), AT)?;
            let amount = positive(m, "amount", AT, true)?.expect("required");
            if t == EventType::NovaEarned {
                Data::NovaEarned { amount }
            } else {
                Data::NovaRedeemed { amount }
            }
        }
        EventType::FirstRedemptionCompleted | EventType::Redemption => {
            only(m, t.data_fields(), AT)?;
            let merchant_id = required_id(m, "merchant_id", AT)?;
            let amount = positive(m, "amount", AT, false)?;
            if t == EventType::Redemption {
                Data::Redemption {
                    merchant_id,
                    amount,
                }
            } else {
                Data::FirstRedemptionCompleted {
                    merchant_id,
                    amount,
                }
            }
        }
        EventType::ExclusiveCompleted => {
            only(m, t.data_fields(), AT)?;
            Data::ExclusiveCompleted {
                exclusive_id: required_id(m, "exclusive_id", AT)?,
            }
        }
        EventType::MerchantExclusiveEnabled => {
            only(m, t.data_fields(), AT)?;
            Data::MerchantExclusiveEnabled {
                merchant_id: required_id(m, "merchant_id", AT)?,
                merchant_name: optional_text(m, "merchant_name", AT)?
                    .ok_or_else(|| Invalid::new("data.merchant_name", "required"))?,
                exclusive_id: required_id(m, "exclusive_id", AT)?,
            }
        }
    })
}

/// The data of a stored event (written by [`Data::to_json`], so valid).
pub(super) fn stored_data(t: EventType, m: &Map<String, Value>) -> Result<Data, Invalid> {
    data(t, m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(v: Value) -> Event {
        parse(&v).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(v: Value) -> Invalid {
        parse(&v).expect_err("invalid")
    }

    #[test]
    fn each_type_parses_with_its_data_and_the_old_name_is_an_alias() {
        let e = ok(
            json!({"event_id": "e1", "type": "driver_signed_up", "occurred_at": "2026-11-01T10:00:00Z",
            "subject": {"external_id": "u1"}, "data": {"email": "Ann@Example.com", "firstname": "Ann"}}),
        );
        assert_eq!(e.event_type, EventType::UserSignup);
        assert_eq!(e.email().unwrap().as_str(), "ann@example.com");
        assert_eq!(e.occurred_at, 1_793_527_200_000);
        let e = ok(
            json!({"event_id": 7, "type": "nova_earned", "occurred_at": 1_700_000_000_000i64,
            "subject": {"email": "b@example.com"}, "data": {"amount": 25}}),
        );
        assert_eq!(e.data, Data::NovaEarned { amount: 25 });
        assert_eq!(e.event_id, "7");
        let e = ok(
            json!({"event_id": "m", "type": "merchant_exclusive_enabled", "occurred_at": 1,
            "subject": {"external_id": "u9"}, "data": {"merchant_id": "m1", "merchant_name": "Cafe", "exclusive_id": "x1"}}),
        );
        assert_eq!(
            Data::from_stored(e.event_type, &e.data.to_json()).unwrap(),
            e.data
        );
    }

    #[test]
    fn bad_input_names_the_field() {
        let base = |t: &str, data: Value| json!({"event_id": "e", "type": t, "occurred_at": 1, "subject": {"external_id": "u"}, "data": data});
        let e = err(base("nova_earned", json!({"amount": 0})));
        assert_eq!(e.field, "data.amount");
        assert!(e.message.contains("positive integer"), "{e}");
        assert_eq!(
            err(base("nova_earned", json!({"amount": -3}))).field,
            "data.amount"
        );
        assert_eq!(
            err(base("nova_earned", json!({"amount": 2.5}))).field,
            "data.amount"
        );
        assert_eq!(err(base("nova_earned", json!({}))).field, "data.amount");
        let e = err(base("teleported", json!({})));
        assert_eq!(e.field, "type");
        assert!(
            e.message.contains("user_signup") && e.message.contains("merchant_exclusive_enabled"),
            "{e}"
        );
        assert_eq!(
            err(base("otp_verified", json!({"code": "1234"}))).field,
            "data.code"
        );
        assert_eq!(
            err(base("redemption", json!({"amount": 3}))).field,
            "data.merchant_id"
        );
        assert_eq!(
            err(base("wallet_pass_installed", json!({"platform": "nokia"}))).field,
            "data.platform"
        );
        assert_eq!(
            err(base("user_signup", json!({"email": "nope"}))).field,
            "data.email"
        );
        let e =
            err(json!({"event_id": "e", "type": "otp_verified", "occurred_at": 1, "subject": {}}));
        assert_eq!(e.field, "subject");
        assert_eq!(err(json!({"event_id": "e", "type": "otp_verified", "occurred_at": "yesterday", "subject": {"external_id": "u"}})).field, "occurred_at");
        assert_eq!(
            err(json!({"type": "otp_verified", "occurred_at": 1, "subject": {"external_id": "u"}}))
                .field,
            "event_id"
        );
        assert_eq!(err(json!({"event_id": "e", "type": "otp_verified", "occurred_at": 1, "subject": {"external_id": "u"}, "extra": 1})).field, "extra");
        assert_eq!(
            err(base("nova_earned", json!({"amount": 0}))).at(3).field,
            "events[3].data.amount"
        );
    }
}
