//! Picking the secrets an agent gets at start from the node's secrets file, in the shape the
//! sandbox's secrets channel ([`clawkeep_sandbox::secrets`]) hands over without any disk.

use super::Payload;

use super::{SecretsAs, SecretsError, Store, Value};

/// The secrets `names` of `agent`, delivered `how`; every one must be set.
pub fn for_agent(
    store: &Store,
    agent: &str,
    names: &[String],
    how: SecretsAs,
) -> Result<Payload, SecretsError> {
    if names.is_empty() {
        return Ok(Payload::default());
    }
    let mut all = store.load()?;
    let mut mine = all.remove(agent).unwrap_or_default();
    let missing: Vec<String> = names
        .iter()
        .filter(|n| !mine.contains_key(n.as_str()))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(SecretsError::Missing {
            agent: agent.into(),
            names: missing,
            file: store.file_path(),
        });
    }
    let picked: Vec<(String, Value)> = names
        .iter()
        .filter_map(|n| mine.remove(n).map(|v| (n.clone(), v)))
        .collect();
    Ok(match how {
        SecretsAs::Files => Payload {
            files: picked,
            env: Vec::new(),
        },
        SecretsAs::Env => Payload {
            files: Vec::new(),
            env: picked,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_through_memfd() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::new(d.path());
        store.set("customer", "matrix_token", "v4lue-zz").unwrap();
        let names = vec!["matrix_token".to_string()];
        let p = for_agent(&store, "customer", &names, SecretsAs::Env).unwrap();
        assert!(p.files.is_empty());
        let back =
            clawkeep_sandbox::secrets::read(clawkeep_sandbox::secrets::to_memfd(&p).unwrap())
                .unwrap();
        assert_eq!(back.env[0].0, "matrix_token");
        assert_eq!(back.env[0].1.expose(), "v4lue-zz");
        let err = for_agent(
            &store,
            "customer",
            &["matrix_token".into(), "other".into()],
            SecretsAs::Files,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("clawkeep secrets set customer other"), "{err}");
        assert!(!err.contains("v4lue-zz"), "{err}");
    }
}
