//! What OpenClaw's readiness answer means: `/readyz` (and `/ready`) is ready only when its
//! JSON says `"ready": true`. A status alone proves nothing: OpenClaw's control UI answers
//! any path it does not know with a 200 page, and the agent controls whatever listens there.

/// Whether `agent` runs OpenClaw's gateway (the fleet gave it no command of its own).
pub fn runs_gateway(agent: &crate::fleet::Agent) -> bool {
    let (node, _) = crate::fleet::runtime::OpenclawRuntime::gateway_command();
    agent.command.program == node
}

/// The paths whose answers are judged by their JSON.
pub const PATHS: [&str; 2] = ["/readyz", "/ready"];

/// The most of a readiness answer read; the rest is left unread.
pub const ANSWER_MAX: usize = 64 * 1024;

/// Whether an answer to `path` must be judged by its JSON.
pub fn judged(path: &str) -> bool {
    PATHS.contains(&path)
}

/// Ready, or why not, from the (bounded) body of a 2xx answer to `/readyz`.
pub fn verdict(body: &[u8]) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        ready: Option<bool>,
        #[serde(default)]
        failing: Vec<serde_json::Value>,
    }
    let a: Answer = serde_json::from_slice(body).map_err(|_| {
        format!(
            "its /readyz answer is not OpenClaw's readiness JSON (it starts {:?})",
            crate::text::printable(&String::from_utf8_lossy(&body[..body.len().min(40)]))
        )
    })?;
    match a.ready {
        Some(true) => Ok(()),
        Some(false) => Err(format!(
            "OpenClaw says it is not ready (failing: {})",
            crate::text::printable(&serde_json::Value::from(a.failing).to_string())
        )),
        None => Err("its /readyz answer has no \"ready\" field".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_openclaws_ready_json_counts_as_ready() {
        assert_eq!(
            verdict(br#"{"ready":true,"failing":[],"eventLoop":{}}"#),
            Ok(())
        );
        let not = verdict(br#"{"ready":false,"failing":["channels"]}"#).unwrap_err();
        assert!(not.contains("channels"), "{not}");
        let page = verdict(b"<!doctype html><html>control ui</html>").unwrap_err();
        assert!(page.contains("not OpenClaw's readiness JSON"), "{page}");
        assert!(verdict(br#"{"ok":true}"#).is_err());
        let raw = verdict(b"\x1b[2J{").unwrap_err();
        assert!(
            !raw.contains('\x1b'),
            "agent bytes reach the operator raw: {raw:?}"
        );
        assert!(judged("/readyz") && judged("/ready") && !judged("/healthz"));
    }
}
