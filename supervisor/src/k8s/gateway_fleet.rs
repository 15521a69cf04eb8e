//! The fleet file the cluster's model gateway runs with: `[models]` and `[teams]` as
//! written, and of `[defaults]` and each `[[agent]]` only what the gateway uses (names,
//! teams, models, budgets, requests in flight), agents sorted by name, so the same fleet
//! gives the same file whatever the order of its agents.

use toml_edit::{ArrayOfTables, DocumentMut, Item, Table};

use super::RenderError;

/// Keys of `[defaults]` and `[[agent]]` the gateway reads.
const GATEWAY_KEYS: [&str; 5] = ["team", "model", "models", "budget", "max_concurrent"];

fn subset(from: &Table, keys: &[&str]) -> Table {
    let mut t = Table::new();
    for k in keys {
        if let Some(item) = from.get(k) {
            t.insert(k, item.clone());
        }
    }
    t
}

/// The gateway's fleet file from the fleet file's text; `backends` are the managed
/// backends' names with the URLs the cluster serves them at, which become upstreams (with
/// their addresses in `local_addresses`) in place of `[[models.backend]]`.
pub fn gateway_fleet(source: &str, backends: &[(String, String)]) -> Result<String, RenderError> {
    let doc: DocumentMut =
        source
            .parse()
            .map_err(|e: toml_edit::TomlError| RenderError::Serialize {
                what: "the gateway's fleet file".into(),
                message: e.to_string(),
            })?;
    let mut out = DocumentMut::new();
    for section in ["models", "teams"] {
        if let Some(item) = doc.get(section) {
            out.insert(section, item.clone());
        }
    }
    if let Some(models) = out.get_mut("models").and_then(Item::as_table_like_mut) {
        as_upstreams(models, backends)?;
    }
    if let Some(d) = doc.get("defaults").and_then(Item::as_table) {
        let t = subset(d, &GATEWAY_KEYS);
        if !t.is_empty() {
            out.insert("defaults", Item::Table(t));
        }
    }
    let mut agents: Vec<Table> = doc
        .get("agent")
        .and_then(Item::as_array_of_tables)
        .into_iter()
        .flat_map(|a| a.iter())
        .map(|a| {
            let mut keys = vec!["name"];
            keys.extend(GATEWAY_KEYS);
            subset(a, &keys)
        })
        .collect();
    let name = |t: &Table| {
        t.get("name")
            .and_then(Item::as_str)
            .unwrap_or("")
            .to_string()
    };
    agents.sort_by_key(name);
    if !agents.is_empty() {
        let mut array = ArrayOfTables::new();
        for a in agents {
            array.push(a);
        }
        out.insert("agent", Item::ArrayOfTables(array));
    }
    Ok(format!(
        "# The model gateway's view of the fleet, written by `clawkeep render k8s`.\n{out}"
    ))
}

/// `[models]` with each managed backend as an upstream at its cluster URL (its other keys
/// as the backend gives them to a node's upstream) and the backend list gone.
fn as_upstreams(
    models: &mut dyn toml_edit::TableLike,
    backends: &[(String, String)],
) -> Result<(), RenderError> {
    let Some(list) = models.remove("backend") else {
        return Ok(());
    };
    let bad = |message: &str| RenderError::Serialize {
        what: "the gateway's fleet file".into(),
        message: message.to_string(),
    };
    let tables: Vec<toml_edit::InlineTable> = match list {
        Item::ArrayOfTables(a) => a.iter().map(|t| t.clone().into_inline_table()).collect(),
        Item::Value(toml_edit::Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_inline_table().cloned())
            .collect(),
        _ => return Err(bad("[models] backend is not a list of tables")),
    };
    let mut upstreams = match models.remove("upstream") {
        None => toml_edit::Array::new(),
        Some(Item::Value(toml_edit::Value::Array(a))) => a,
        Some(Item::ArrayOfTables(a)) => a
            .iter()
            .map(|t| toml_edit::Value::InlineTable(t.clone().into_inline_table()))
            .collect(),
        Some(_) => return Err(bad("[models] upstream is not a list")),
    };
    let mut local = match models.remove("local_addresses") {
        Some(Item::Value(toml_edit::Value::Array(a))) => a,
        _ => toml_edit::Array::new(),
    };
    for b in tables {
        let name = b
            .get("name")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let url = backends
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, u)| u.clone())
            .ok_or_else(|| bad(&format!("backend {name:?} has no address in the cluster")))?;
        let kind = b
            .get("kind")
            .and_then(|v| v.as_str())
            .unwrap_or("llama-server");
        let mut u = toml_edit::InlineTable::new();
        u.insert("name", name.as_str().into());
        u.insert("url", url.as_str().into());
        u.insert(
            "api",
            if kind == "ollama" { "ollama" } else { "openai" }.into(),
        );
        for key in ["models", "concurrency"] {
            if let Some(v) = b.get(key) {
                u.insert(key, v.clone());
            }
        }
        upstreams.push(toml_edit::Value::InlineTable(u));
        if let Some(host) = reqwest::Url::parse(&url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
        {
            let host = host.trim_matches(['[', ']']).to_string();
            if !local.iter().any(|v| v.as_str() == Some(&host)) {
                local.push(host.as_str());
            }
        }
    }
    models.insert("upstream", Item::Value(toml_edit::Value::Array(upstreams)));
    models.insert(
        "local_addresses",
        Item::Value(toml_edit::Value::Array(local)),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_the_gateway_uses_is_kept_and_agents_are_sorted() {
        let text = r#"
[runtime]
rootfs = "rootfs"

[models]
upstream = [{ name = "u", url = "http://10.0.0.1:80", api = "openai", models = ["m"] }]

[defaults]
cpu = 2.0
team = "lab"

[[agent]]
name = "zed"
command = "/bin/z"
budget = { tokens_per_day = 10 }

[[agent]]
name = "amy"
soul = "souls/amy.md"
models = ["m"]
"#;
        let out = gateway_fleet(text, &[]).unwrap();
        assert!(
            !out.contains("rootfs") && !out.contains("cpu") && !out.contains("soul"),
            "{out}"
        );
        assert!(!out.contains("command"), "{out}");
        let amy = out.find("name = \"amy\"").unwrap();
        let zed = out.find("name = \"zed\"").unwrap();
        assert!(amy < zed, "{out}");
        assert!(out.contains("budget = { tokens_per_day = 10 }"), "{out}");
        assert!(
            out.contains("[models]") && out.contains("team = \"lab\""),
            "{out}"
        );
    }
}
