//! The suite format's JSON Schema (`tenantgate schema`), generated from the suite model
//! ([`super::model`]): the structs derive it, so a key added to the model is in the
//! schema. The types that read several YAML shapes by hand (a URL or a request, a status
//! code, class or list, `true`/`false`/options) describe those shapes here.
//!
//! The schema is for editors (completion, hover docs, early red squiggles) and for
//! `check-jsonschema`-style linters. It is deliberately no stricter than the loader: what
//! it cannot express (placeholders, durations, JSONPath) the loader checks, with the file,
//! line and column.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::Value;

use super::model::{
    CaptureSpec, Dur, JValue, Keep, Map, MarkerSpec, Method, OneOrMany, ReqOrUrl, Request,
    StatusSpec, Step, Suite, Teardown, Toggle,
};
use super::template::Tpl;

/// The schema of a version 1 suite, as pretty JSON ending in a newline.
pub fn suite_schema() -> String {
    let mut s = serde_json::to_value(schemars::schema_for!(Suite)).unwrap_or(Value::Null);
    if let Some(o) = s.as_object_mut() {
        o.insert(
            "title".into(),
            "tenantgate suite (version 1, with this tenantgate's extensions)".into(),
        );
    }
    let mut out = serde_json::to_string_pretty(&s).unwrap_or_default();
    out.push('\n');
    out
}

impl JsonSchema for Tpl {
    fn schema_name() -> Cow<'static, str> {
        "Template".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Text with placeholders: `{{name}}` (vars, captures `a.NAME` / `b.NAME`, `own.NAME`, `run_id`, `uuid`), `${ENV_VAR}`, `${VAR:-default}`. A number is read as its text.",
            "type": ["string", "number"]
        })
    }
}

impl JsonSchema for JValue {
    fn schema_name() -> Cow<'static, str> {
        "JsonTemplate".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Any JSON value; strings may hold placeholders (a string that is only `{{a.NAME}}` sends the captured value with its JSON type)."
        })
    }
}

impl JsonSchema for Dur {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A whole number and a unit: `500ms`, `10s`, `2m`, `1h`.",
            "type": "string",
            "pattern": "^\\s*[0-9]+\\s*(ms|s|m|h)\\s*$"
        })
    }
}

impl JsonSchema for Method {
    fn schema_name() -> Cow<'static, str> {
        "Method".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An HTTP method, e.g. `GET`, `POST`, `PATCH`, `DELETE` (default `GET`).",
            "type": "string"
        })
    }
}

impl JsonSchema for ReqOrUrl {
    fn schema_name() -> Cow<'static, str> {
        "RequestOrUrl".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let request = g.subschema_for::<Request>();
        json_schema!({
            "description": "A URL (relative to `target.base_url`; a GET) or a whole request.",
            "anyOf": [{ "type": "string" }, request]
        })
    }
}

impl JsonSchema for StatusSpec {
    fn schema_name() -> Cow<'static, str> {
        "Status".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let one = json_schema!({
            "anyOf": [
                { "type": "integer", "minimum": 100, "maximum": 599 },
                { "type": "string", "pattern": "^([1-5][0-9][0-9]|[1-5][xX][xX])$" }
            ]
        });
        json_schema!({
            "description": "A status code (`404`), a class (`2xx`), or a list of them (`[200, 204]`).",
            "anyOf": [one.clone(), { "type": "array", "items": one, "minItems": 1 }]
        })
    }
}

impl JsonSchema for CaptureSpec {
    fn schema_name() -> Cow<'static, str> {
        "Capture".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "RFC 9535 JSONPath into the JSON body (`$.id`), `$status`, `$header.NAME` or `$cookie.NAME`.",
            "type": "string",
            "pattern": "^\\$"
        })
    }
}

impl JsonSchema for MarkerSpec {
    fn schema_name() -> Cow<'static, str> {
        "Marker".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A value B must never see (a string), or `{ exclude: VALUE }` to drop one.",
            "anyOf": [
                { "type": "string" },
                {
                    "type": "object",
                    "properties": { "exclude": { "type": "string" } },
                    "required": ["exclude"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

impl<T: JsonSchema> JsonSchema for Toggle<T> {
    fn schema_name() -> Cow<'static, str> {
        format!("Toggle_{}", T::schema_name()).into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let options = g.subschema_for::<T>();
        json_schema!({
            "description": "`false` switches it off, `true` on with the defaults, a mapping on with these options.",
            "anyOf": [{ "type": "boolean" }, options]
        })
    }
}

impl<T: JsonSchema> JsonSchema for OneOrMany<T> {
    fn schema_name() -> Cow<'static, str> {
        format!("OneOrMany_{}", T::schema_name()).into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let one = g.subschema_for::<T>();
        json_schema!({ "anyOf": [one.clone(), { "type": "array", "items": one }] })
    }
}

impl<V: JsonSchema> JsonSchema for Map<V> {
    fn schema_name() -> Cow<'static, str> {
        format!("Map_{}", V::schema_name()).into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let v = g.subschema_for::<V>();
        json_schema!({ "type": "object", "additionalProperties": v })
    }
}

impl JsonSchema for Teardown {
    fn schema_name() -> Cow<'static, str> {
        "Teardown".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let steps = g.subschema_for::<Vec<Step>>();
        let keep = g.subschema_for::<Keep>();
        json_schema!({
            "description": "Steps run for both orgs at the end (also after failures): a list of steps, or `{ steps, keeps, reason }` naming what the API cannot delete.",
            "anyOf": [
                steps.clone(),
                {
                    "type": "object",
                    "properties": {
                        "steps": steps,
                        "keeps": { "type": "array", "items": keep },
                        "reason": { "type": "string" }
                    },
                    "additionalProperties": false
                }
            ]
        })
    }
}

impl JsonSchema for Keep {
    fn schema_name() -> Cow<'static, str> {
        "Keep".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A capture naming what the API cannot delete, or `{ capture, reason }`.",
            "anyOf": [
                { "type": "string" },
                {
                    "type": "object",
                    "properties": { "capture": { "type": "string" }, "reason": { "type": "string" } },
                    "required": ["capture"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_names_every_top_level_key_of_the_model() {
        let s: Value = serde_json::from_str(&suite_schema()).unwrap();
        let props = s["properties"].as_object().expect("properties");
        for key in [
            "version", "name", "env", "target", "vars", "orgs", "seed", "checks", "database",
            "markers", "attacks", "promises", "openapi", "accept",
        ] {
            assert!(props.contains_key(key), "{key} missing");
        }
        assert_eq!(s["required"], serde_json::json!(["version", "name"]));
        assert_eq!(s["additionalProperties"], false);
    }
}
