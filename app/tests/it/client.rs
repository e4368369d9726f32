//! The HubSpot client on its own, against the simulator.

use crate::common;

use app::hubspot::HubSpotClient;
use hubspot_sim::SimConfig;
use serde_json::json;

#[tokio::test]
async fn list_contacts_pages_through_everything_once() {
    let sim = hubspot_sim::spawn(SimConfig::default()).await.unwrap();
    let seeded = reqwest::Client::new()
        .post(format!("{}/_sim/seed/contacts", sim.base_url()))
        .json(&json!({"count": 250, "properties": {"email": "p{n}@example.com"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(seeded.status(), 201);
    let base = sim.base_url();
    let vars = [
        ("HUBSPOT_ACCESS_TOKEN", "pat".to_string()),
        ("HUBSPOT_BASE_URL", base),
    ];
    let settings = common::settings(&vars);
    let client =
        HubSpotClient::new(&settings.hubspot, settings.hubspot.token.clone().unwrap()).unwrap();

    let mut emails = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = client.list_contacts(after.as_deref()).await.unwrap();
        pages += 1;
        emails.extend(
            page.results
                .iter()
                .map(|c| c["properties"]["email"].as_str().unwrap().to_string()),
        );
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(emails.len(), 250);
    emails.sort();
    emails.dedup();
    assert_eq!(emails.len(), 250, "no contact twice");
}
