//! Where each operation lives on HubSpot: the one place that maps operations to paths.
//!
//! The client speaks HubSpot's date-based API (`/crm/objects/2026-03/contacts`,
//! `/account-info/2026-03/details`), the version set by `HUBSPOT_API_VERSION`. The numeric
//! paths (`/crm/v3/…`) lose support in September 2027; the OAuth token paths are in
//! [`super::oauth`].

/// The paths of one API version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    version: String,
}

impl Paths {
    pub fn new(version: &str) -> Self {
        Self {
            version: version.to_string(),
        }
    }

    /// An object type's collection: create, list.
    pub fn objects(&self, object_type: &str) -> String {
        format!("/crm/objects/{}/{object_type}", self.version)
    }

    /// One object, by id or (with `idProperty`) by a unique property. `key` is encoded here.
    pub fn object(&self, object_type: &str, key: &str) -> String {
        format!("{}/{}", self.objects(object_type), urlencoding::encode(key))
    }

    pub fn search(&self, object_type: &str) -> String {
        format!("{}/search", self.objects(object_type))
    }

    /// `action`: read, create, update, upsert, archive.
    pub fn batch(&self, object_type: &str, action: &str) -> String {
        format!("{}/batch/{action}", self.objects(object_type))
    }

    /// The multi-currency settings: `company-currency`, `exchange-rates/current`.
    pub fn currencies(&self, what: &str) -> String {
        format!("/settings/currencies/{}/{what}", self.version)
    }

    /// The properties API of a type: every definition.
    pub fn properties(&self, object_type: &str) -> String {
        format!("/crm/properties/{}/{object_type}", self.version)
    }

    /// Associations v4 between two types: `action` is `batch/read`, `batch/create`, ….
    pub fn associations(&self, from: &str, to: &str, action: &str) -> String {
        format!("/crm/associations/{}/{from}/{to}/{action}", self.version)
    }

    /// Custom events: `event-definitions`, `send/batch`.
    pub fn events(&self, what: &str) -> String {
        format!("/events/{}/{what}", self.version)
    }

    pub fn account_details(&self) -> String {
        format!("/account-info/{}/details", self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_map_to_date_based_paths() {
        let p = Paths::new("2026-03");
        assert_eq!(p.objects("contacts"), "/crm/objects/2026-03/contacts");
        assert_eq!(
            p.object("contacts", "a b@x.com"),
            "/crm/objects/2026-03/contacts/a%20b%40x.com"
        );
        assert_eq!(p.search("deals"), "/crm/objects/2026-03/deals/search");
        assert_eq!(
            p.batch("contacts", "upsert"),
            "/crm/objects/2026-03/contacts/batch/upsert"
        );
        assert_eq!(p.account_details(), "/account-info/2026-03/details");
        assert_eq!(
            p.associations("deals", "companies", "batch/read"),
            "/crm/associations/2026-03/deals/companies/batch/read"
        );
    }
}
