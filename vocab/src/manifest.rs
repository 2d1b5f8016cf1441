//! Reading a plugin manifest's `[settings]` the way the host hands them to a
//! plugin (the host's manifest loader and the native test harness share this).

/// The `[settings]` of a plugin manifest (`plugin.toml`), as the host passes them:
/// strings as they are, arrays newline-joined, numbers and booleans as text.
pub fn settings(manifest: &str) -> Result<std::collections::BTreeMap<String, String>, String> {
    let table: toml::Table = manifest.parse().map_err(|e| format!("manifest: {e}"))?;
    match table.get("settings") {
        None => Ok(Default::default()),
        Some(toml::Value::Table(t)) => t.iter().map(|(k, v)| Ok((k.clone(), setting_text(k, v)?))).collect(),
        Some(_) => Err("manifest: `settings` must be a table".into()),
    }
}

/// One setting value as text (see [`settings`]).
pub fn setting_text(key: &str, value: &toml::Value) -> Result<String, String> {
    use toml::Value;
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    };
    match value {
        Value::Array(items) => items
            .iter()
            .map(|v| scalar(v).ok_or(format!("setting `{key}`: list items must be strings, numbers or booleans")))
            .collect::<Result<Vec<_>, _>>()
            .map(|items| items.join("\n")),
        v => scalar(v).ok_or(format!("setting `{key}`: must be a string, number, boolean or list")),
    }
}
