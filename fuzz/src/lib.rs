//! What hostile input reaches, one function per fuzz target: each must return (never panic,
//! never hang, never allocate without bound) whatever bytes it is given. The libFuzzer
//! binaries in `targets/` call these (`scripts/fuzz`); the tests below replay every committed
//! seed and crash in `seeds/<target>/`, so a fixed crash stays fixed in `scripts/test`.

#![forbid(unsafe_code)]

use std::path::Path;

use clawkeep_gateway::dialect::{self, Dialect, Endpoint, StreamTranslator};

/// The fleet file: parse, then check (paths resolve under a scratch dir that does not exist,
/// so the checks that look at the disk only find things missing).
pub fn fleet(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = supervisor::fleet::parse("fleet.toml", text, Path::new("/nonexistent/clawkeep-fuzz"));
}

/// The model gateway's dialect translators: a request body in either dialect for every
/// endpoint; then, for a chat request that parses, the same bytes as a whole upstream answer
/// and as a stream in both dialects, fed in two pieces split at the first byte's value.
pub fn dialect(data: &[u8]) {
    for d in [Dialect::Ollama, Dialect::OpenAi] {
        for e in [Endpoint::Chat, Endpoint::Generate, Endpoint::Embed] {
            let _ = dialect::parse_request(d, e, data);
        }
    }
    let chat = br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}"#;
    for d in [Dialect::Ollama, Dialect::OpenAi] {
        let Ok(req) = dialect::parse_request(d, Endpoint::Chat, chat) else {
            continue;
        };
        for upstream in [Dialect::Ollama, Dialect::OpenAi] {
            let _ = dialect::translate_response(&req, upstream, "m", data);
            let mut t = StreamTranslator::new(&req, upstream, "m");
            let cut = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
            let _ = t.feed(&data[..cut]);
            let _ = t.feed(&data[cut..]);
            let _ = t.finish();
            let _ = t.usage();
        }
    }
}

/// What a pull trusts least: every key a bucket lists and every path a snapshot manifest
/// names, as the store checks them before anything is written.
pub fn store_keys(data: &[u8]) {
    let root = Path::new("/nonexistent/clawkeep-fuzz/home");
    if let Ok(key) = std::str::from_utf8(data) {
        let _ = clawkeep_store::keys::unsafe_reason(key);
        let _ = clawkeep_store::keys::local_path(root, key);
        let _ = clawkeep_store::manifest::is_snapshot_id(key);
        let _ = clawkeep_store::manifest::id_time(key);
    }
    if let Ok(snapshot) = serde_json::from_slice::<clawkeep_store::manifest::Snapshot>(data) {
        for path in snapshot.files.keys() {
            let _ = clawkeep_store::keys::unsafe_reason(path);
            let _ = clawkeep_store::keys::local_path(root, path);
        }
    }
}

/// The ledger reader (`clawkeep spend`): one ledger file with these bytes.
pub fn ledger(data: &[u8]) {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    if std::fs::write(dir.path().join("2026-12-05.jsonl"), data).is_ok() {
        let _ = clawkeep_gateway::ledger::read(dir.path(), std::time::UNIX_EPOCH);
    }
}

/// The OCI bundle reader of `clawkeep run`: config.json as the launcher reads it, and its
/// seccomp section compiled to BPF.
pub fn bundle(data: &[u8]) {
    let Ok(spec) = serde_json::from_slice::<oci_spec::runtime::Spec>(data) else {
        return;
    };
    if let Some(seccomp) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        let _ = clawkeep_sandbox::seccomp::compile(seccomp);
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    fn replay(target: &str, f: fn(&[u8])) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("seeds")
            .join(target);
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            f(&std::fs::read(e.path()).unwrap());
            n += 1;
        }
        assert!(n > 0, "no seeds in {}", dir.display());
    }

    #[test]
    fn every_fleet_seed_and_crash_is_handled() {
        replay("fleet", super::fleet);
    }

    #[test]
    fn every_dialect_seed_and_crash_is_handled() {
        replay("dialect", super::dialect);
    }

    #[test]
    fn every_store_key_seed_and_crash_is_handled() {
        replay("store_keys", super::store_keys);
    }

    #[test]
    fn every_ledger_seed_and_crash_is_handled() {
        replay("ledger", super::ledger);
    }

    #[test]
    fn every_bundle_seed_and_crash_is_handled() {
        replay("bundle", super::bundle);
    }
}
