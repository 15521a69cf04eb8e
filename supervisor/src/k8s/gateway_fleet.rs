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

/// The gateway's fleet file from the fleet file's text.
pub fn gateway_fleet(source: &str) -> Result<String, RenderError> {
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
        let out = gateway_fleet(text).unwrap();
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
