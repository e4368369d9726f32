//! Deal amounts across currencies: a portal's company currency and the rates (from HubSpot's
//! multi-currency settings) that turn an amount in another currency into it.

use std::collections::BTreeMap;

/// A portal's currencies as HubSpot holds them now.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rates {
    /// The company currency (`USD`).
    pub company: String,
    /// Currency code → how much one unit is in the company currency (the rate in force).
    pub to_company: BTreeMap<String, f64>,
}

impl Rates {
    /// `amount` (in `currency`; `None` or empty: the company currency) in the company currency,
    /// to the cent; `None` when the amount is not a number or the currency has no rate.
    pub fn normalize(&self, amount: &str, currency: Option<&str>) -> Option<String> {
        let amount: f64 = amount.trim().parse().ok().filter(|a: &f64| a.is_finite())?;
        let rate = match currency.map(str::trim).filter(|c| !c.is_empty()) {
            None => 1.0,
            Some(c) if c.eq_ignore_ascii_case(&self.company) => 1.0,
            Some(c) => *self.to_company.get(&c.to_ascii_uppercase())?,
        };
        Some(format!("{:.2}", amount * rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_convert_at_the_rate_in_force_to_the_cent() {
        let rates = Rates {
            company: "USD".into(),
            to_company: [("EUR".to_string(), 1.08), ("JPY".to_string(), 0.0067)].into(),
        };
        assert_eq!(
            rates.normalize("1000", Some("EUR")).as_deref(),
            Some("1080.00")
        );
        assert_eq!(
            rates.normalize("150000", Some("jpy")).as_deref(),
            Some("1005.00")
        );
        assert_eq!(rates.normalize("12.5", None).as_deref(), Some("12.50"));
        assert_eq!(
            rates.normalize("12.5", Some("USD")).as_deref(),
            Some("12.50")
        );
        assert_eq!(
            rates.normalize("12.5", Some("CHF")),
            None,
            "no rate: no guess"
        );
        assert_eq!(rates.normalize("lots", None), None);
    }
}
