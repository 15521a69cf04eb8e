//! `--target agent-sandbox`: each agent as kubernetes-sigs/agent-sandbox's objects instead of
//! a StatefulSet: a `Sandbox` (agents.x-k8s.io/v1beta1) that runs the same pod with its home
//! volume, kept when the sandbox goes (`shutdownPolicy: Retain`), and a `SandboxTemplate`
//! (extensions.agents.x-k8s.io/v1beta1) of that pod for claims and warm pools, whose
//! network policy management is left to clawkeep (`Unmanaged`: agent-sandbox's default
//! policy opens egress to the internet; the agent's own policy applies) and which lets no
//! claim inject variables or volumes. The controller's kinds have no k8s-openapi types: they
//! are JSON around typed pod templates, checked against the project's CRD schemas in tests.

use serde_json::{json, Value};

use super::agent::{pod_template, Sidecars};
use super::meta::{object, team_of};
use super::{Options, RenderError};
use crate::fleet::Agent;

/// agent-sandbox's API group of sandboxes.
pub const SANDBOX_API: &str = "agents.x-k8s.io/v1beta1";
/// agent-sandbox's API group of templates and claims.
pub const TEMPLATE_API: &str = "extensions.agents.x-k8s.io/v1beta1";

fn value<T: serde::Serialize>(what: &str, v: T) -> Result<Value, RenderError> {
    serde_json::to_value(v).map_err(|e| RenderError::Serialize {
        what: what.to_string(),
        message: e.to_string(),
    })
}

/// The agent's Sandbox and SandboxTemplate.
pub fn objects(a: &Agent, opts: &Options, sidecars: &Sidecars) -> Result<Vec<Value>, RenderError> {
    let (template, claim) = pod_template(a, opts, sidecars);
    let what = |k: &str| format!("the {k} of {}", a.name);
    let meta = value(
        &what("metadata"),
        object(&a.name, team_of(a), Some(&a.name), "agent"),
    )?;
    let template = value(&what("pod template"), template)?;
    // agent-sandbox's claim templates are a name, labels and a spec: no kind of their own.
    let mut claim = value(&what("home volume"), claim)?;
    if let Some(c) = claim.as_object_mut() {
        c.remove("apiVersion");
        c.remove("kind");
    }
    let claims = json!([claim]);
    Ok(vec![
        json!({
            "apiVersion": SANDBOX_API,
            "kind": "Sandbox",
            "metadata": meta,
            "spec": {
                "podTemplate": template,
                "volumeClaimTemplates": claims,
                "operatingMode": "Running",
                "shutdownPolicy": "Retain",
            },
        }),
        json!({
            "apiVersion": TEMPLATE_API,
            "kind": "SandboxTemplate",
            "metadata": meta,
            "spec": {
                "podTemplate": template,
                "volumeClaimTemplates": claims,
                "networkPolicyManagement": "Unmanaged",
                "envVarsInjectionPolicy": "Disallowed",
                "volumeClaimTemplatesPolicy": "Disallowed",
            },
        }),
    ])
}
