//! The OpenAPI document served at `{prefix}/openapi`: the checked-in
//! `openapi.json`, with the configured mandatory parameters added to `/graph` (only that
//! path, as the reference does) and every path prefixed. Rendered once at start-up.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

/// The document as checked in.
const DOCUMENT: &str = include_str!("openapi.json");

/// Renders the document for a path prefix (already normalised) and the mandatory
/// client parameters.
pub fn render(prefix: &str, mandatory: &BTreeSet<String>) -> Vec<u8> {
    let mut doc: Value = serde_json::from_str(DOCUMENT).expect("openapi.json is valid JSON");
    if let Some(parameters) = doc
        .pointer_mut("/paths/~1graph/get/parameters")
        .and_then(Value::as_array_mut)
    {
        parameters.extend(mandatory.iter().map(|name| {
            json!({
                "name": name,
                "in": "query",
                "required": true,
                "schema": { "type": "string" }
            })
        }));
    }
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        let prefixed: Map<String, Value> = std::mem::take(paths)
            .into_iter()
            .map(|(path, item)| (format!("{prefix}{path}"), item))
            .collect();
        *paths = prefixed;
    }
    serde_json::to_vec(&doc).expect("a JSON value always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_mandatory_parameters_are_applied() {
        let mandatory: BTreeSet<String> = ["channel".to_owned()].into();
        let doc: Value = serde_json::from_slice(&render("/api/upgrades_info", &mandatory)).unwrap();
        let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
        assert_eq!(
            paths,
            [
                "/api/upgrades_info/graph",
                "/api/upgrades_info/v1/graph",
                "/api/upgrades_info/v1/explain",
                "/api/upgrades_info/v1/path",
                "/api/upgrades_info/v1/mirror-gaps"
            ]
        );
        let graph = doc["paths"]["/api/upgrades_info/graph"]["get"]["parameters"]
            .as_array()
            .unwrap();
        assert_eq!(graph.last().unwrap()["name"], "channel");
        assert_eq!(graph.last().unwrap()["required"], true);
        let v1 = doc["paths"]["/api/upgrades_info/v1/graph"]["get"]["parameters"]
            .as_array()
            .unwrap();
        assert!(v1.iter().all(|p| p["name"] != "channel"));
        assert_eq!(doc["info"]["title"], "OpenShift Cincinnati Policy-Engine");
    }
}
