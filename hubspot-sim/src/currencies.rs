//! HubSpot's multi-currency settings (`/settings/currencies/2026-03/…`, legacy
//! `/settings/v3/currencies/…`): the portal's company currency and the exchange rates of its
//! additional currencies (each rate converts one unit of `fromCurrencyCode` into the company
//! currency, effective from `effectiveAt`; the current rate of a currency is its latest
//! effective one).

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::model::{format_ms, now_ms, parse_datetime_ms};
use crate::state::{HsJson, Portal, Shared};

/// One exchange rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Rate {
    pub id: u64,
    pub from: String,
    pub rate: f64,
    pub effective_ms: i64,
    pub created_ms: i64,
}

/// A portal's currency settings.
#[derive(Debug, Clone)]
pub struct Currencies {
    pub company: String,
    pub rates: Vec<Rate>,
}

impl Default for Currencies {
    fn default() -> Self {
        Self {
            company: "USD".into(),
            rates: Vec::new(),
        }
    }
}

impl Currencies {
    /// The latest effective rate of each additional currency, as of now.
    pub fn current(&self) -> Vec<&Rate> {
        let now = now_ms();
        let mut latest: std::collections::BTreeMap<&str, &Rate> = Default::default();
        for r in self.rates.iter().filter(|r| r.effective_ms <= now) {
            let slot = latest.entry(r.from.as_str()).or_insert(r);
            if (r.effective_ms, r.id) > (slot.effective_ms, slot.id) {
                *slot = r;
            }
        }
        latest.into_values().collect()
    }

    fn json(&self, r: &Rate) -> Value {
        json!({
            "id": r.id.to_string(),
            "fromCurrencyCode": r.from,
            "toCurrencyCode": self.company,
            "conversionRate": r.rate,
            "effectiveAt": format_ms(r.effective_ms),
            "visibleInUI": true,
            "createdAt": format_ms(r.created_ms),
            "updatedAt": format_ms(r.created_ms),
        })
    }
}

fn valid_code(code: &str) -> bool {
    code.len() == 3 && code.chars().all(|c| c.is_ascii_uppercase())
}

/// `GET …/company-currency`.
pub async fn company(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
) -> Json<Value> {
    let code = state.store(portal).currencies.company.clone();
    Json(json!({"currencyCode": code, "currencyName": code}))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompanyBody {
    pub currency_code: String,
}

/// `PUT …/company-currency`.
pub async fn set_company(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
    HsJson(body): HsJson<CompanyBody>,
) -> Result<Json<Value>, ApiError> {
    if !valid_code(&body.currency_code) {
        return Err(ApiError::validation(format!(
            "'{}' is not a supported currency code (ISO 4217, e.g. EUR).",
            body.currency_code
        )));
    }
    state.store(portal).currencies.company = body.currency_code.clone();
    Ok(Json(
        json!({"currencyCode": body.currency_code, "currencyName": body.currency_code}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateBody {
    pub from_currency_code: String,
    pub conversion_rate: f64,
    #[serde(default)]
    pub effective_at: Option<String>,
}

/// `POST …/exchange-rates`: a rate from an additional currency to the company currency.
pub async fn add_rate(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
    HsJson(body): HsJson<RateBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut store = state.store(portal);
    let c = &mut store.currencies;
    if !valid_code(&body.from_currency_code) {
        return Err(ApiError::validation(format!(
            "'{}' is not a supported currency code (ISO 4217, e.g. EUR).",
            body.from_currency_code
        )));
    }
    if body.from_currency_code == c.company {
        return Err(ApiError::validation(format!(
            "{} is the company currency; rates convert other currencies into it.",
            c.company
        )));
    }
    let scaled = body.conversion_rate * 1e6;
    if body.conversion_rate.is_nan()
        || body.conversion_rate <= 0.0
        || (scaled - scaled.round()).abs() > 1e-6
    {
        return Err(ApiError::validation(format!(
            "conversionRate must be greater than 0 with at most 6 decimals, got {}.",
            body.conversion_rate
        )));
    }
    let effective_ms = match &body.effective_at {
        None => now_ms(),
        Some(raw) => parse_datetime_ms(raw).ok_or_else(|| {
            ApiError::validation(format!("effectiveAt '{raw}' is not a datetime."))
        })?,
    };
    let rate = Rate {
        id: c.rates.len() as u64 + 1,
        from: body.from_currency_code.clone(),
        rate: body.conversion_rate,
        effective_ms,
        created_ms: now_ms(),
    };
    c.rates.push(rate.clone());
    Ok((StatusCode::CREATED, Json(c.json(&rate))))
}

/// `GET …/exchange-rates`: every rate, oldest first.
pub async fn rates(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
) -> Json<Value> {
    let store = state.store(portal);
    let c = &store.currencies;
    Json(json!({"results": c.rates.iter().map(|r| c.json(r)).collect::<Vec<_>>()}))
}

/// `GET …/exchange-rates/current`: the rate in force for each additional currency.
pub async fn current(
    State(state): State<Shared>,
    Extension(Portal(portal)): Extension<Portal>,
) -> Json<Value> {
    let store = state.store(portal);
    let c = &store.currencies;
    Json(json!({"results": c.current().into_iter().map(|r| c.json(r)).collect::<Vec<_>>()}))
}
