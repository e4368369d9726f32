use std::time::Duration;

use hubspot_sim::{RunningSim, SimConfig};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub const TOKEN: &str = "pat-na1-test";

pub struct TestSim {
    pub sim: RunningSim,
    pub http: reqwest::Client,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl TestSim {
    pub async fn start() -> Self {
        Self::with(SimConfig::default()).await
    }

    pub async fn with(config: SimConfig) -> Self {
        let sim = hubspot_sim::spawn(config).await.expect("simulator starts");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Self { sim, http }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.base_url())
    }

    pub async fn call_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.http.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request reaches the simulator");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call_as(Some(TOKEN), method, path, body).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, None).await
    }

    /// Creates a contact and returns its id.
    pub async fn contact(&self, properties: Value) -> String {
        let r = self
            .post(
                "/crm/v3/objects/contacts",
                serde_json::json!({ "properties": properties }),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }
}

/// Asserts HubSpot's error envelope and returns the body.
pub fn assert_error(reply: &Reply, status: u16, category: &str) -> Value {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.body);
    let b = &reply.body;
    assert_eq!(b["status"], "error", "{b}");
    assert_eq!(b["category"], category, "{b}");
    assert!(b["message"].as_str().is_some_and(|m| !m.is_empty()), "{b}");
    let correlation = b["correlationId"].as_str().expect("correlationId");
    assert_eq!(correlation.len(), 36, "{b}");
    b.clone()
}

/// Asserts that a contact read without `properties` returned exactly HubSpot's defaults.
pub fn assert_default_contact_properties(record: &Value) {
    let keys: Vec<&String> = record["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .collect();
    assert_eq!(
        keys,
        [
            "createdate",
            "email",
            "firstname",
            "hs_object_id",
            "lastmodifieddate",
            "lastname"
        ]
    );
}
