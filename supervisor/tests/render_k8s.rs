//! `clawkeep render k8s`: the fleet as Kubernetes objects, checked offline. The lab example
//! and a three-team fleet render to committed golden files; the same fleet, rendered twice
//! or with its agents in another order, gives the same bytes; every pod holds the
//! restricted profile and the rest of the security invariants; what a cluster cannot take
//! is refused with a message that names it.

mod netpol;
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use supervisor::k8s::{self, Options, Rendered};

const IMAGE: &str =
    "registry.lab/clawkeep@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn opts() -> Options {
    Options {
        image: IMAGE.to_string(),
        user_namespaces: false,
        runtime_class: None,
        gateway_ip: Some("10.96.0.20".parse().unwrap()),
        ..Options::default()
    }
}

/// The fleet rendered with `opts` as the command's flags over its `[cluster]`.
fn render(fleet: &Path, opts: &Options) -> Vec<Rendered> {
    let f = supervisor::fleet::load_for_cluster(fleet).unwrap_or_else(|d| panic!("{d}"));
    let opts = Options::of(&f.cluster, opts.clone()).unwrap();
    k8s::render(&f, &opts).unwrap()
}

/// Every file as `# path` and its YAML, then the kustomization: what a reviewer reads.
fn shown(rendered: &[Rendered]) -> String {
    let mut out = String::new();
    for r in rendered {
        out.push_str(&format!("# {}\n{}---\n", r.path.display(), r.yaml));
    }
    out.push_str("# kustomization.yaml\n");
    out.push_str(&k8s::kustomization(rendered).unwrap());
    out
}

fn teams() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fleets/k8s/teams.toml")
}

fn yaml(r: &Rendered) -> serde_json::Value {
    serde_norway::from_str(&r.yaml).unwrap()
}

/// The rendered object of `kind` named `name` (the first of its kind when `name` is empty).
fn object(rendered: &[Rendered], kind: &str, name: &str) -> serde_json::Value {
    rendered
        .iter()
        .map(yaml)
        .find(|v| v["kind"] == kind && (name.is_empty() || v["metadata"]["name"] == name))
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn the_lab_example_renders_from_its_own_cluster_section_on_a_machine_that_has_none_of_its_node_files(
) {
    let lab = repo().join("examples/lab/fleet.toml");
    let f = supervisor::fleet::load_for_cluster(&lab).unwrap_or_else(|d| panic!("{d}"));
    let opts = Options::of(&f.cluster, Options::default()).unwrap();
    let rendered = k8s::render(&f, &opts).unwrap();
    insta::assert_snapshot!("lab", shown(&rendered));
}

#[test]
fn three_teams_render_to_their_namespaces_quotas_and_policies() {
    let rendered = render(&teams(), &opts());
    insta::assert_snapshot!("teams", shown(&rendered));
    let namespaces: Vec<String> = rendered
        .iter()
        .filter(|r| r.path.starts_with("cluster"))
        .map(|r| yaml(r)["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        namespaces,
        [
            "clawkeep-default",
            "clawkeep-ops",
            "clawkeep-research",
            "clawkeep-support",
            "clawkeep-system"
        ]
    );
    // The research team's quota is its two agents' pods: agent, brain sync and model shim
    // each (the brain's init step runs before them, within the same size).
    let quota = rendered
        .iter()
        .find(|r| r.path == Path::new("clawkeep-research/resourcequota-clawkeep-quota.yaml"))
        .map(yaml)
        .unwrap();
    let hard = &quota["spec"]["hard"];
    assert_eq!(
        hard["limits.cpu"], "2400m",
        "0.5 + 1.5 cores and four 0.1 helpers"
    );
    assert_eq!(
        hard["limits.memory"], "2Gi",
        "512Mi + 1Gi and four 128Mi helpers"
    );
    assert_eq!(
        hard["requests.storage"], "5Gi",
        "a 4Gi home and a default 1Gi one"
    );
    assert_eq!(hard["pods"], "2");
}

#[test]
fn the_same_fleet_renders_the_same_bytes_whatever_the_order_of_its_agents() {
    let once = render(&teams(), &opts());
    assert_eq!(once, render(&teams(), &opts()), "rendered twice");
    // The file with its agents in reverse order.
    let text = std::fs::read_to_string(teams()).unwrap();
    let (head, agents) = text.split_once("[[agent]]").unwrap();
    let mut blocks: Vec<String> = agents
        .split("[[agent]]")
        .map(|b| format!("[[agent]]{}", b.trim_end()))
        .collect();
    blocks.reverse();
    let dir = tempfile::tempdir().unwrap();
    let shuffled = dir.path().join("teams.toml");
    std::fs::write(&shuffled, format!("{head}{}\n", blocks.join("\n\n"))).unwrap();
    assert_ne!(std::fs::read_to_string(&shuffled).unwrap(), text);
    assert_eq!(once, render(&shuffled, &opts()), "agents reordered");
    // And a change shows in every object's fleet hash.
    let changed = dir.path().join("changed.toml");
    std::fs::write(&changed, text.replace("cpu = 1.5", "cpu = 1.25")).unwrap();
    let hash =
        |r: &[Rendered]| yaml(&r[0])["metadata"]["annotations"]["clawkeep.io/fleet-hash"].clone();
    assert_ne!(hash(&once), hash(&render(&changed, &opts())));
}

/// The pod template of a workload (a StatefulSet, or agent-sandbox's Sandbox and
/// SandboxTemplate), if it is one.
fn pod_template(v: &serde_json::Value) -> Option<&serde_json::Value> {
    match v["kind"].as_str()? {
        "StatefulSet" | "Deployment" => Some(&v["spec"]["template"]),
        "Sandbox" | "SandboxTemplate" => Some(&v["spec"]["podTemplate"]),
        _ => None,
    }
}

/// The pod specs of every workload rendered.
fn pods(rendered: &[Rendered]) -> Vec<(String, serde_json::Value)> {
    rendered
        .iter()
        .map(yaml)
        .filter_map(|v| {
            let spec = pod_template(&v)?["spec"].clone();
            Some((v["metadata"]["name"].as_str().unwrap().to_string(), spec))
        })
        .collect()
}

/// The lab rendered for agent-sandbox.
fn sandboxed() -> Vec<Rendered> {
    let lab = repo().join("examples/lab/fleet.toml");
    render(
        &lab,
        &Options {
            target: k8s::Target::AgentSandbox,
            ..opts()
        },
    )
}

#[test]
fn every_pod_is_restricted_token_less_pinned_and_sized() {
    let mut all = pods(&render(&teams(), &opts()));
    all.extend(pods(&render(
        &repo().join("examples/lab/fleet.toml"),
        &opts(),
    )));
    assert_eq!(all.len(), 11, "7 agents, 2 gateways and 2 model servers");
    // And the lab's agents as agent-sandbox runs them: a Sandbox and a template each.
    let boxed: Vec<_> = pods(&sandboxed())
        .into_iter()
        .filter(|(n, _)| n != "clawkeep-gateway" && !n.starts_with("model-"))
        .collect();
    assert_eq!(boxed.len(), 4);
    all.extend(boxed);
    for (name, pod) in &all {
        assert_eq!(pod["automountServiceAccountToken"], false, "{name}");
        assert_eq!(pod["enableServiceLinks"], false, "{name}");
        for key in ["hostNetwork", "hostPID", "hostIPC"] {
            assert!(pod[key].is_null() || pod[key] == false, "{name}: {key}");
        }
        let psc = &pod["securityContext"];
        assert_eq!(psc["runAsNonRoot"], true, "{name}");
        assert_ne!(psc["runAsUser"], 0, "{name}");
        assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault", "{name}");
        for v in pod["volumes"].as_array().into_iter().flatten() {
            assert!(v["hostPath"].is_null(), "{name}: hostPath volume {v}");
        }
        let containers: Vec<&serde_json::Value> = pod["containers"]
            .as_array()
            .unwrap()
            .iter()
            .chain(pod["initContainers"].as_array().into_iter().flatten())
            .collect();
        // Each Secret is mounted into the containers it is for and no other: an agent's
        // model credential into its shim, its store key into its brain's init step and
        // sidecar, its OpenClaw token and secrets into the agent; every agent's credential
        // into the gateway.
        let holders = |volume: &str| -> &[&str] {
            match volume {
                "credential" => &["clawkeep-shim"],
                "store-key" => &["brain-pull", "brain-sync"],
                "token" | "secrets" => &["agent"],
                "credentials" => &["gateway"],
                other => panic!("{name}: a secret volume this test does not know: {other}"),
            }
        };
        let secret_volumes: Vec<&serde_json::Value> = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| !v["secret"].is_null())
            .collect();
        // A model server holds no secret.
        assert_eq!(
            secret_volumes.is_empty(),
            name.starts_with("model-"),
            "{name}"
        );
        for v in &secret_volumes {
            let vname = v["name"].as_str().unwrap();
            let mounted: Vec<&str> = containers
                .iter()
                .filter(|c| {
                    c["volumeMounts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|m| m["name"] == vname && m["readOnly"] == true)
                })
                .map(|c| c["name"].as_str().unwrap())
                .collect();
            assert_eq!(mounted, holders(vname), "{name}: who mounts {vname}");
            let written = containers.iter().any(|c| {
                c["volumeMounts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|m| m["name"] == vname && m["readOnly"] != true)
            });
            assert!(!written, "{name}: {vname} mounted writable");
            let expected = match (name.as_str(), vname) {
                ("clawkeep-gateway", _) => "clawkeep-gateway-credentials".to_string(),
                (_, "store-key") => format!("agent-{name}-store"),
                (_, v) => format!("agent-{name}-{v}"),
            };
            assert_eq!(v["secret"]["secretName"], expected, "{name}");
        }
        // The lab's agents have it all: brain, shim, token.
        if ["research", "customer"].contains(&name.as_str()) {
            let mut names: Vec<&str> = containers
                .iter()
                .map(|c| c["name"].as_str().unwrap())
                .collect();
            names.sort();
            assert_eq!(
                names,
                ["agent", "brain-pull", "brain-sync", "clawkeep-shim"],
                "{name}"
            );
            let vnames: Vec<&str> = secret_volumes
                .iter()
                .map(|v| v["name"].as_str().unwrap())
                .collect();
            assert_eq!(vnames, ["credential", "store-key", "token"], "{name}");
        }
        for c in containers {
            let cname = format!("{name}/{}", c["name"]);
            let sc = &c["securityContext"];
            assert_eq!(sc["allowPrivilegeEscalation"], false, "{cname}");
            assert_eq!(sc["privileged"], false, "{cname}");
            assert_eq!(sc["readOnlyRootFilesystem"], true, "{cname}");
            assert_eq!(sc["runAsNonRoot"], true, "{cname}");
            assert_eq!(
                sc["capabilities"]["drop"],
                serde_json::json!(["ALL"]),
                "{cname}"
            );
            assert!(sc["capabilities"]["add"].is_null(), "{cname}");
            assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{cname}");
            assert!(
                k8s::pinned(c["image"].as_str().unwrap()),
                "{cname}: {}",
                c["image"]
            );
            for side in ["limits", "requests"] {
                for r in ["cpu", "memory", "ephemeral-storage"] {
                    assert!(c["resources"][side][r].is_string(), "{cname}: {side}.{r}");
                }
            }
            for e in c["env"].as_array().into_iter().flatten() {
                let n = e["name"].as_str().unwrap().to_ascii_uppercase();
                assert!(
                    !["TOKEN", "KEY", "SECRET", "PASSWORD"]
                        .iter()
                        .any(|w| n.contains(w)),
                    "{cname}: a secret in env: {e}"
                );
            }
        }
    }
}

#[test]
fn each_agent_may_reach_only_the_gateway_and_its_listed_addresses() {
    let rendered = render(&teams(), &opts());
    let policy = rendered
        .iter()
        .find(|r| r.path == Path::new("clawkeep-research/networkpolicy-agent-alpha.yaml"))
        .map(yaml)
        .unwrap();
    let egress = policy["spec"]["egress"].as_array().unwrap();
    assert_eq!(egress.len(), 4, "{policy}");
    // The store, by its address and port.
    assert_eq!(egress[0]["to"][0]["ipBlock"]["cidr"], "10.96.0.40/32");
    assert_eq!(egress[0]["ports"][0]["port"], 3900);
    // The gateway by its pods and by its Service address (for networks that check a
    // connection before translating the Service address).
    assert_eq!(egress[1]["to"][1]["ipBlock"]["cidr"], "10.96.0.20/32");
    assert_eq!(egress[1]["ports"][0]["port"], 11434);
    assert_eq!(
        egress[1]["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
        "clawkeep-gateway"
    );
    assert_eq!(egress[2]["to"][0]["ipBlock"]["cidr"], "192.0.2.10/32");
    assert_eq!(egress[2]["ports"][0]["port"], 443);
    assert_eq!(egress[3]["to"][0]["ipBlock"]["cidr"], "2001:db8::7/128");
    // No gateway port, no way in.
    assert!(policy["spec"]["ingress"].is_null(), "{policy}");
    let deny = rendered
        .iter()
        .find(|r| r.path == Path::new("clawkeep-research/networkpolicy-default-deny.yaml"))
        .map(yaml)
        .unwrap();
    assert_eq!(deny["spec"]["podSelector"], serde_json::json!({}));
    assert_eq!(
        deny["spec"]["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );
}

#[test]
fn what_a_cluster_cannot_take_is_refused_where_it_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(teams()).unwrap();
    // The line a text starts on in the fixture.
    let line = |of: &str| text.lines().position(|l| l.starts_with(of)).unwrap() + 1;
    let refused = |name: &str, from: &str, to: &str| -> String {
        let path = dir.path().join(name);
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
        match supervisor::fleet::load_for_cluster(&path) {
            Ok(_) => panic!("{name} was taken"),
            Err(d) => d.to_string(),
        }
    };
    // A host name: a NetworkPolicy allows addresses only (fine on a node, with its proxy).
    let said = refused(
        "named.toml",
        "\"192.0.2.10:443\"",
        "\"api.example.com:443\"",
    );
    assert!(
        said.contains(&format!("named.toml:{}:11: [[agent]] \"alpha\": egress \"api.example.com:443\" names a host: a Kubernetes NetworkPolicy allows addresses, not names", line("egress = [\"192.0.2.10"))),
        "{said}"
    );
    // A team too long for its namespace.
    let long = "o".repeat(60);
    let said = refused("long.toml", "team = \"ops\"", &format!("team = \"{long}\""));
    assert!(
        said.contains(&format!("long.toml:{}:8: [[agent]] \"delta\": team \"{long}\" cannot name a Kubernetes namespace", line("team = \"ops\""))),
        "{said}"
    );
    // A team whose namespace is clawkeep's own: its agents would share the operators'
    // namespace (and reach every agent's gateway port) or the gateway's.
    for reserved in ["operators", "system"] {
        let said = refused(
            "reserved.toml",
            "team = \"ops\"",
            &format!("team = \"{reserved}\""),
        );
        assert!(
            said.contains(&format!("[[agent]] \"delta\": team \"{reserved}\" is the name of clawkeep's own namespace \"clawkeep-{reserved}\"")),
            "{said}"
        );
    }
    // An image not pinned by digest.
    let mut loose = opts();
    loose.image = "registry.lab/clawkeep:latest".to_string();
    let f = supervisor::fleet::load_for_cluster(&teams()).unwrap();
    let e = k8s::render(&f, &loose).unwrap_err().to_string();
    assert!(e.contains("is not pinned by digest"), "{e}");
    // [cluster] is checked where it is written, on a node too (`clawkeep check`).
    // Its section starts on line n + 2; the values given here are on the next three.
    let n = text.lines().position(|l| l == "[cluster]").unwrap() - 1;
    let path = dir.path().join("cluster.toml");
    std::fs::write(
        &path,
        text.replacen(
            "[cluster]\nstore = \"http://10.96.0.40:3900\"",
            "[cluster]\nimage = \"registry.lab/clawkeep:latest\"\ngateway_ip = \"gateway\"\nstore = \"http://garage.svc:3900\"",
            1,
        ),
    )
    .unwrap();
    for load in [
        supervisor::fleet::load_for_cluster,
        supervisor::fleet::load_for_image,
    ] {
        let said = load(&path).unwrap_err().to_string();
        for expected in [
            format!("cluster.toml:{}:9: [cluster]: image \"registry.lab/clawkeep:latest\" is not pinned by digest", n + 3),
            format!("cluster.toml:{}:14: [cluster]: gateway_ip \"gateway\" is not an IP address", n + 4),
            format!("cluster.toml:{}:9: [cluster]: store \"http://garage.svc:3900\" names a host: pods reach the store without DNS", n + 5),
        ] {
            assert!(said.contains(&expected), "{expected}\nnot in:\n{said}");
        }
    }
    // With no image anywhere, the rendering says where to give one.
    let none = Options::of(&f.cluster, Options::default())
        .unwrap_err()
        .to_string();
    assert!(
        none.contains("set [cluster] image (or give --image)"),
        "{none}"
    );
}

#[test]
fn the_gateway_runs_with_the_fleets_models_and_agents_and_nothing_else() {
    let rendered = render(&teams(), &opts());
    let config = rendered
        .iter()
        .find(|r| r.path == Path::new("clawkeep-system/configmap-clawkeep-gateway-fleet.yaml"))
        .map(yaml)
        .unwrap();
    let text = config["data"]["fleet.toml"].as_str().unwrap();
    assert!(
        !text.contains("rootfs") && !text.contains("command"),
        "{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fleet.toml");
    std::fs::write(&file, text).unwrap();
    let f = supervisor::fleet::load_for_cluster_gateway(&file)
        .unwrap_or_else(|d| panic!("{d}\n{text}"));
    let names: Vec<&str> = f.agents.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["alpha", "beta", "delta", "epsilon", "gamma"]);
    let alpha = f.agents[0].gateway_caller();
    assert_eq!(alpha.team.as_deref(), Some("research"));
    assert!(f.models.is_some());
    // The Service is at the address the shims use.
    let service = rendered
        .iter()
        .find(|r| r.path == Path::new("clawkeep-system/service-clawkeep-gateway.yaml"))
        .map(yaml)
        .unwrap();
    assert_eq!(service["spec"]["clusterIP"], "10.96.0.20");
}

#[test]
fn render_writes_the_files_and_a_kustomization_that_lists_them() {
    let dir = tempfile::tempdir().unwrap();
    let rendered = render(&teams(), &opts());
    k8s::write(dir.path(), &rendered).unwrap();
    let k: serde_json::Value = serde_norway::from_str(
        &std::fs::read_to_string(dir.path().join("kustomization.yaml")).unwrap(),
    )
    .unwrap();
    let listed: Vec<&str> = k["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), rendered.len());
    for (path, r) in listed.iter().zip(&rendered) {
        assert_eq!(
            std::fs::read_to_string(dir.path().join(path)).unwrap(),
            r.yaml
        );
    }
}

/// A tool of scripts/install-k8s-tools (kubernetes-validate, kubectl).
fn k8s_tool(name: &str) -> PathBuf {
    let p = support::cache().join("k8s-venv/bin").join(name);
    assert!(
        p.is_file(),
        "{} is missing: run scripts/install-k8s-tools (scripts/test does)",
        p.display()
    );
    p
}

/// Both fleets rendered and written, and the lab for agent-sandbox, each into its own
/// directory.
fn written() -> (tempfile::TempDir, Vec<(PathBuf, Vec<Rendered>)>) {
    let dir = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    for (name, rendered) in [
        (
            "lab",
            render(&repo().join("examples/lab/fleet.toml"), &opts()),
        ),
        ("teams", render(&teams(), &opts())),
        ("lab-sandboxed", sandboxed()),
    ] {
        let at = dir.path().join(name);
        k8s::write(&at, &rendered).unwrap();
        out.push((at, rendered));
    }
    (dir, out)
}

fn validate(files: &[PathBuf]) -> (bool, String) {
    let out = Command::new(k8s_tool("kubernetes-validate"))
        .args(["--strict", "-k", "1.37.0"])
        .args(files)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A kind it has no schema for is a WARN with exit code 0: a failure here.
    let clean = out.status.success() && !said.contains("WARN") && !said.contains("ERROR");
    (clean, said)
}

/// Kinds of other projects' CRDs, which kubernetes-validate does not know: checked by
/// `scripts/validate-crs` against those CRDs' schemas instead.
const CRD_KINDS: [&str; 4] = ["PodMonitor", "PrometheusRule", "Sandbox", "SandboxTemplate"];

fn crd_kind(r: &Rendered) -> bool {
    CRD_KINDS.iter().any(|k| yaml(r)["kind"] == *k)
}

fn validate_crs(files: &[PathBuf]) -> (bool, String) {
    let out = Command::new(k8s_tool("python"))
        .arg(repo().join("scripts/validate-crs"))
        .args(files)
        .output()
        .unwrap();
    let said = support::text(&out);
    (out.status.success() && !said.contains("ERROR"), said)
}

#[test]
fn every_object_passes_kubernetes_validate_strict_for_1_37() {
    let (_dir, sets) = written();
    let mut custom = 0;
    for (at, rendered) in &sets {
        let (crs, builtin): (Vec<&Rendered>, Vec<&Rendered>) =
            rendered.iter().partition(|r| crd_kind(r));
        let files: Vec<PathBuf> = builtin.iter().map(|r| at.join(&r.path)).collect();
        let (clean, said) = validate(&files);
        assert!(clean, "{said}");
        assert_eq!(
            said.matches("passed for resource").count(),
            builtin.len(),
            "{said}"
        );
        let files: Vec<PathBuf> = crs.iter().map(|r| at.join(&r.path)).collect();
        if !files.is_empty() {
            let (clean, said) = validate_crs(&files);
            assert!(clean, "{said}");
            assert_eq!(
                said.matches("\nOK ").count() + usize::from(said.starts_with("OK ")),
                crs.len(),
                "{said}"
            );
        }
        custom += crs.len();
    }
    assert_eq!(
        custom,
        2 + 2 + 4,
        "the lab's PodMonitor and PrometheusRule, twice, and its sandboxed agents"
    );
    // The validator is strict: a field the API does not have fails it.
    let (at, rendered) = &sets[1];
    let sts = rendered
        .iter()
        .find(|r| r.yaml.contains("kind: StatefulSet"))
        .unwrap();
    let bad = at.join("bad.yaml");
    std::fs::write(
        &bad,
        sts.yaml
            .replace("replicas: 1", "replicas: 1\n  replicaz: 1"),
    )
    .unwrap();
    let (clean, said) = validate(&[bad]);
    assert!(!clean, "an unknown field passed: {said}");
    // So is the custom resources' validator, for each project's kinds.
    let (at, rendered) = &sets[2];
    for (kind, from, to) in [
        (
            "Sandbox",
            "shutdownPolicy: Retain",
            "shutdownPolicy: Retain\n  replicas: 1",
        ),
        ("Sandbox", "shutdownPolicy: Retain", "shutdownPolicy: Keep"),
        (
            "SandboxTemplate",
            "      automountServiceAccountToken: false",
            "      automountServiceAccountTokenz: false",
        ),
        ("PodMonitor", "interval: 30s", "intervall: 30s"),
        ("PrometheusRule", "  - alert:", "  - alertz:"),
    ] {
        let r = rendered.iter().find(|r| yaml(r)["kind"] == kind).unwrap();
        assert!(r.yaml.contains(from), "{kind}: {from}");
        let bad = at.join("bad-cr.yaml");
        std::fs::write(&bad, r.yaml.replacen(from, to, 1)).unwrap();
        let (clean, said) = validate_crs(&[bad]);
        assert!(!clean, "{kind}: {to:?} passed: {said}");
    }
}

#[test]
fn kubectl_kustomize_renders_the_manifests_unchanged() {
    let (_dir, sets) = written();
    for (at, rendered) in &sets {
        let out = Command::new(k8s_tool("kubectl"))
            .arg("kustomize")
            .arg(at)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let mut theirs: Vec<serde_json::Value> = Vec::new();
        for doc in serde_norway::Deserializer::from_str(&text) {
            theirs.push(serde::Deserialize::deserialize(doc).unwrap());
        }
        let mut ours: Vec<serde_json::Value> = rendered.iter().map(yaml).collect();
        let key = |v: &serde_json::Value| v.to_string();
        theirs.sort_by_key(key);
        ours.sort_by_key(key);
        assert_eq!(
            theirs,
            ours,
            "kustomize changed an object in {}",
            at.display()
        );
    }
}

#[test]
fn the_command_writes_the_manifests_and_names_the_fleet_when_it_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("k8s");
    let run = |image: &str| {
        Command::new(support::clawkeep())
            .args(["render", "k8s"])
            .arg(teams())
            .arg("--out")
            .arg(&out)
            .args(["--image", image, "--gateway-ip", "10.96.0.20"])
            .output()
            .unwrap()
    };
    let ok = run(IMAGE);
    let said = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(said.contains("51 objects for 5 agents"), "{said}");
    assert!(out.join("kustomization.yaml").is_file());
    assert!(out
        .join("clawkeep-research/statefulset-alpha.yaml")
        .is_file());
    // A fleet with [models] needs the gateway's address for its agents' shims.
    let no_ip = Command::new(support::clawkeep())
        .args(["render", "k8s"])
        .arg(teams())
        .arg("--out")
        .arg(&out)
        .args(["--image", IMAGE])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&no_ip.stderr);
    assert_eq!(no_ip.status.code(), Some(2), "{err}");
    assert!(err.contains("give --gateway-ip"), "{err}");
    let bad = run("registry.lab/clawkeep:latest");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{err}");
    assert!(
        err.contains("teams.toml: image \"registry.lab/clawkeep:latest\" is not pinned by digest"),
        "{err}"
    );
}

/// The cluster the reachability test imagines around a rendering: the rendered namespaces and
/// agent pods, the model gateway and another pod in clawkeep-system, cluster DNS, an
/// operator's pod, another tenant's pod, and addresses outside (the internet, the metadata
/// service, the agent's listed destinations and their neighbour).
fn world(rendered: &[Rendered]) -> Vec<netpol::Endpoint> {
    use netpol::{Endpoint, Labels};
    let ns_labels = |name: &str, extra: &Labels| {
        let mut l = extra.clone();
        l.insert("kubernetes.io/metadata.name".into(), name.into());
        l
    };
    let labels = |v: &serde_json::Value| -> Labels {
        v.as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect()
    };
    let objects: Vec<serde_json::Value> = rendered.iter().map(yaml).collect();
    let mut namespaces: BTreeMap<String, Labels> = BTreeMap::new();
    for o in objects.iter().filter(|o| o["kind"] == "Namespace") {
        let name = o["metadata"]["name"].as_str().unwrap();
        namespaces.insert(
            name.into(),
            ns_labels(name, &labels(&o["metadata"]["labels"])),
        );
    }
    let mut out = Vec::new();
    // The pods that run: a StatefulSet's, or a Sandbox's (a template runs nothing itself).
    for (i, o) in objects
        .iter()
        .filter(|o| ["StatefulSet", "Sandbox", "Deployment"].contains(&o["kind"].as_str().unwrap()))
        .enumerate()
    {
        let ns = o["metadata"]["namespace"].as_str().unwrap();
        out.push(Endpoint::Pod {
            name: format!("{}-0", o["metadata"]["name"].as_str().unwrap()),
            namespace: ns.into(),
            namespace_labels: namespaces[ns].clone(),
            labels: labels(&pod_template(o).unwrap()["metadata"]["labels"]),
            ip: format!("10.1.{i}.1").parse().unwrap(),
        });
    }
    let pod = |name: &str, ns: &str, l: &[(&str, &str)], ip: &str| Endpoint::Pod {
        name: name.into(),
        namespace: ns.into(),
        namespace_labels: ns_labels(ns, &Labels::new()),
        labels: l
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ip: ip.parse().unwrap(),
    };
    out.push(pod(
        "metrics-0",
        "clawkeep-system",
        &[("app.kubernetes.io/name", "metrics")],
        "10.9.0.2",
    ));
    out.push(pod(
        "coredns-0",
        "kube-system",
        &[("k8s-app", "kube-dns")],
        "10.96.0.10",
    ));
    out.push(pod(
        "console-0",
        "clawkeep-operators",
        &[("app", "console")],
        "10.8.0.1",
    ));
    out.push(pod("web-0", "other-tenant", &[("app", "web")], "10.7.0.1"));
    for ip in [
        "10.96.0.20",
        "10.96.0.30",
        "10.96.0.31",
        "10.96.0.40",
        "8.8.8.8",
        "169.254.169.254",
        "192.0.2.10",
        "192.0.2.11",
        "2001:db8::7",
    ] {
        out.push(Endpoint::External {
            ip: ip.parse().unwrap(),
        });
    }
    out
}

/// Every allowed connection that starts or ends at an agent's pod, as `from -> to:port/proto`.
fn reachable(policies: &[serde_json::Value], world: &[netpol::Endpoint]) -> Vec<String> {
    let agent = |e: &netpol::Endpoint| {
        e.name().starts_with("clawkeep-")
            && !e.name().starts_with("clawkeep-system")
            && !e.name().starts_with("clawkeep-operators")
    };
    let ports: [(u16, &str); 9] = [
        (11434, "TCP"),
        (3900, "TCP"),
        (18789, "TCP"),
        (18790, "TCP"),
        (53, "UDP"),
        (53, "TCP"),
        (443, "TCP"),
        (8443, "TCP"),
        (80, "TCP"),
    ];
    let mut out = Vec::new();
    for from in world {
        for to in world {
            if from.name() == to.name() || !(agent(from) || agent(to)) {
                continue;
            }
            for (port, proto) in ports {
                if netpol::allowed(policies, from, to, port, proto) {
                    out.push(format!("{} -> {}:{port}/{proto}", from.name(), to.name()));
                }
            }
        }
    }
    out.sort();
    out
}

#[test]
fn network_policies_let_agents_reach_the_gateway_and_their_addresses_and_nothing_else() {
    let rendered = render(&teams(), &opts());
    let world = world(&rendered);
    let mut policies: Vec<serde_json::Value> = rendered
        .iter()
        .map(yaml)
        .filter(|o| o["kind"] == "NetworkPolicy")
        .collect();
    let mut expected: Vec<String> = [
        "clawkeep-default/epsilon-0",
        "clawkeep-ops/delta-0",
        "clawkeep-research/alpha-0",
        "clawkeep-research/beta-0",
        "clawkeep-support/gamma-0",
    ]
    .iter()
    .flat_map(|a| {
        [
            format!("{a} -> clawkeep-system/clawkeep-gateway-0:11434/TCP"),
            // Its Service address, as a network that checks before translating sees it.
            format!("{a} -> 10.96.0.20:11434/TCP"),
            // The store its brain syncs with (the sidecar's; pods share one network).
            format!("{a} -> 10.96.0.40:3900/TCP"),
        ]
    })
    .collect();
    expected.extend([
        "clawkeep-research/alpha-0 -> 192.0.2.10:443/TCP".to_string(),
        "clawkeep-research/alpha-0 -> 2001:db8::7:8443/TCP".to_string(),
        // gamma has a gateway port: the operators' namespace reaches OpenClaw's port in it.
        "clawkeep-operators/console-0 -> clawkeep-support/gamma-0:18789/TCP".to_string(),
    ]);
    expected.sort();
    assert_eq!(reachable(&policies, &world), expected);
    // The gateway: in from agents only (and the operators, for /metrics), out only to the
    // model server the fleet names.
    let at = |name: &str| world.iter().find(|e| e.name() == name).unwrap();
    let gw = at("clawkeep-system/clawkeep-gateway-0");
    let flows = [
        (at("other-tenant/web-0"), gw, 11434, false),
        (at("clawkeep-system/metrics-0"), gw, 11434, false),
        (at("clawkeep-operators/console-0"), gw, 9090, true),
        (at("clawkeep-operators/console-0"), gw, 11434, false),
        (gw, at("10.96.0.30"), 8000, true),
        // The managed model server: the gateway alone reaches it; it reaches nothing.
        (gw, at("clawkeep-system/model-qwen-0"), 8000, true),
        (gw, at("10.96.0.31"), 8000, true),
        (
            at("clawkeep-research/alpha-0"),
            at("clawkeep-system/model-qwen-0"),
            8000,
            false,
        ),
        (
            at("clawkeep-system/model-qwen-0"),
            at("8.8.8.8"),
            443,
            false,
        ),
        (at("clawkeep-system/model-qwen-0"), gw, 11434, false),
        (gw, at("8.8.8.8"), 443, false),
        (gw, at("169.254.169.254"), 80, false),
        (gw, at("kube-system/coredns-0"), 53, false),
    ];
    for (from, to, port, allowed) in flows {
        assert_eq!(
            netpol::allowed(&policies, from, to, port, "TCP"),
            allowed,
            "{} -> {}:{port}",
            from.name(),
            to.name()
        );
    }
    // The evaluator sees a union that re-opens egress: one more policy allowing all egress
    // in a team's namespace, and its agents reach the internet and the metadata service.
    policies.push(serde_json::json!({
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-egress", "namespace": "clawkeep-ops"},
        "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]},
    }));
    let reopened = reachable(&policies, &world);
    assert!(reopened.contains(&"clawkeep-ops/delta-0 -> 169.254.169.254:80/TCP".to_string()));
    assert!(reopened.contains(&"clawkeep-ops/delta-0 -> kube-system/coredns-0:53/UDP".to_string()));
}

#[test]
fn the_policy_evaluator_follows_the_kubernetes_semantics() {
    use netpol::{allowed, Endpoint, Labels};
    let pod = |ns: &str, app: &str, ip: &str| Endpoint::Pod {
        name: app.into(),
        namespace: ns.into(),
        namespace_labels: Labels::from([
            ("kubernetes.io/metadata.name".to_string(), ns.to_string()),
            (
                "tier".to_string(),
                if ns == "prod" { "prod" } else { "dev" }.to_string(),
            ),
        ]),
        labels: Labels::from([("app".to_string(), app.to_string())]),
        ip: ip.parse().unwrap(),
    };
    let (a, b, c) = (
        pod("prod", "a", "10.0.0.1"),
        pod("prod", "b", "10.0.0.2"),
        pod("dev", "c", "10.0.1.1"),
    );
    let out = |ip: &str| Endpoint::External {
        ip: ip.parse().unwrap(),
    };
    // No policy: everything flows.
    assert!(allowed(&[], &a, &c, 80, "TCP"));
    // A policy with only ingress rules isolates for ingress only (policyTypes defaulted).
    let ingress_only = serde_json::json!({"metadata": {"namespace": "prod"}, "spec": {
        "podSelector": {"matchLabels": {"app": "a"}},
        "ingress": [{"from": [{"podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["b"]}]}}],
                     "ports": [{"port": 8000, "endPort": 8010}]}]}});
    let p = [ingress_only];
    assert!(allowed(&p, &b, &a, 8005, "TCP"), "b in range");
    assert!(!allowed(&p, &b, &a, 8011, "TCP"), "past endPort");
    assert!(!allowed(&p, &b, &a, 8005, "UDP"), "TCP by default");
    assert!(
        !allowed(&p, &c, &a, 8005, "TCP"),
        "a podSelector alone is its own namespace"
    );
    assert!(allowed(&p, &a, &c, 80, "TCP"), "egress not isolated");
    // Egress to a block with a hole, and to a namespace by label.
    let egress = serde_json::json!({"metadata": {"namespace": "prod"}, "spec": {
        "podSelector": {}, "policyTypes": ["Egress"],
        "egress": [{"to": [{"ipBlock": {"cidr": "192.0.2.0/24", "except": ["192.0.2.128/25"]}}]},
                   {"to": [{"namespaceSelector": {"matchLabels": {"tier": "dev"}}}], "ports": [{"protocol": "UDP", "port": 53}]}]}});
    let p = [egress];
    assert!(allowed(&p, &a, &out("192.0.2.5"), 443, "TCP"));
    assert!(
        !allowed(&p, &a, &out("192.0.2.200"), 443, "TCP"),
        "in except"
    );
    assert!(!allowed(&p, &a, &out("198.51.100.1"), 443, "TCP"));
    assert!(allowed(&p, &b, &c, 53, "UDP"), "namespace by label");
    assert!(!allowed(&p, &b, &c, 53, "TCP"));
    assert!(
        !allowed(&p, &a, &b, 80, "TCP"),
        "its own namespace is not tier=dev"
    );
}

#[test]
fn every_command_a_rendered_pod_runs_is_one_clawkeep_has() {
    let mut rendered = render(&teams(), &opts());
    rendered.extend(render(&repo().join("examples/lab/fleet.toml"), &opts()));
    let mut seen = std::collections::BTreeSet::new();
    for v in rendered
        .iter()
        .map(yaml)
        .filter(|v| v["kind"] == "StatefulSet")
    {
        let pod = &v["spec"]["template"]["spec"];
        let containers = pod["containers"]
            .as_array()
            .unwrap()
            .iter()
            .chain(pod["initContainers"].as_array().into_iter().flatten());
        let probes = containers.clone().flat_map(|c| {
            ["startupProbe", "readinessProbe", "livenessProbe"]
                .iter()
                .map(move |p| &c[*p]["exec"])
                .filter(|e| !e.is_null())
        });
        let commands: Vec<&serde_json::Value> = containers
            .clone()
            .chain(probes)
            .map(|c| &c["command"])
            .collect();
        for command in commands {
            let c = command;
            let argv: Vec<&str> = command
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            assert_eq!(argv[0], "clawkeep", "{c}");
            // The subcommand words: up to the first option or path.
            let sub: Vec<String> = argv[1..]
                .iter()
                .take_while(|a| !a.starts_with('-') && !a.starts_with('/'))
                .map(|a| a.to_string())
                .collect();
            seen.insert(sub);
        }
    }
    assert_eq!(
        seen.iter().map(|s| s.join(" ")).collect::<Vec<_>>(),
        [
            "gateway",
            "pod init",
            "pod ready",
            "pod run",
            "pod shim",
            "pod sync"
        ]
    );
    for sub in seen {
        let out = Command::new(support::clawkeep())
            .args(&sub)
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "clawkeep {sub:?}: {}",
            support::text(&out)
        );
    }
}

/// `scripts/helm-template` (Helm 4's library, offline) on `chart` with `--set`s: each
/// template's text by its path under `templates/`, or Helm's message.
fn helm_template(chart: &Path, sets: &[&str]) -> Result<BTreeMap<PathBuf, String>, String> {
    let mut cmd = Command::new(k8s_tool("python"));
    cmd.arg(repo().join("scripts/helm-template"))
        .arg(chart)
        .arg("--json");
    for s in sets {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().unwrap();
    if !out.status.success() {
        return Err(support::text(&out));
    }
    let map: BTreeMap<String, String> = serde_json::from_slice(&out.stdout).unwrap();
    Ok(map
        .into_iter()
        .map(|(p, t)| {
            let rel = p.split_once("/templates/").unwrap().1;
            (PathBuf::from(rel), t)
        })
        .collect())
}

/// The fleet `fleet` as a chart written into `dir`.
fn chart(fleet: &Path, dir: &Path) -> Vec<Rendered> {
    let f = supervisor::fleet::load_for_cluster(fleet).unwrap_or_else(|d| panic!("{d}"));
    let opts = Options::of(&f.cluster, opts()).unwrap();
    let text = std::fs::read_to_string(fleet).unwrap();
    let files = k8s::helm::chart(&f, &text, &opts).unwrap();
    k8s::write_files(dir, &files).unwrap();
    files
}

#[test]
fn the_helm_chart_renders_the_manifests_byte_for_byte_and_refuses_what_it_cannot_render() {
    let dir = tempfile::tempdir().unwrap();
    // The lab, its soul with what looks like a template action: printed as it is.
    let lab = dir.path().join("lab-fleet");
    for f in [
        "fleet.toml",
        "USER.md",
        "souls/research.md",
        "souls/customer.md",
    ] {
        let to = lab.join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(repo().join("examples/lab").join(f), &to).unwrap();
    }
    let braces = "Answer {{ .Values.secret }} as {{ written }}.\n";
    let soul = lab.join("souls/research.md");
    std::fs::write(&soul, std::fs::read_to_string(&soul).unwrap() + braces).unwrap();
    for (name, fleet) in [("lab", lab.join("fleet.toml")), ("teams", teams())] {
        let at = dir.path().join(name);
        let files = chart(&fleet, &at);
        assert_eq!(
            files,
            chart(&fleet, &dir.path().join("again")),
            "{name}: the same chart twice"
        );
        std::fs::remove_dir_all(dir.path().join("again")).unwrap();
        // Default values: every object exactly as the plain manifests have it.
        let plain = render(&fleet, &opts());
        let templated = helm_template(&at, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(templated.len(), plain.len(), "{name}");
        for p in &plain {
            assert_eq!(
                templated.get(&p.path),
                Some(&p.yaml),
                "{name}: {}",
                p.path.display()
            );
        }
        // The images are values: a new digest reaches every container, and nothing else moves.
        let digest = format!("registry.lab/clawkeep@sha256:{}", "e".repeat(64));
        let moved = helm_template(&at, &[&format!("cluster.image={digest}")]).unwrap();
        for p in &plain {
            let expected = p.yaml.replace(IMAGE, &digest);
            assert_eq!(moved[&p.path], expected, "{name}: {}", p.path.display());
        }
        assert!(moved.values().any(|t| t.contains(&digest)), "{name}");
        // A value the templates cannot follow is refused, saying what to do.
        let e = helm_template(&at, &["defaults.memory=4GiB"]).unwrap_err();
        assert!(
            e.contains("these values change the fleet itself")
                && e.contains("clawkeep render k8s FLEET --format helm"),
            "{name}: {e}"
        );
        // The values are checked against the fleet file's schema.
        let e = helm_template(&at, &["defaults.pids=many"]).unwrap_err();
        assert!(e.contains("at '/defaults/pids'"), "{name}: {e}");
        let e = helm_template(&at, &["cluster.image=registry.lab/clawkeep:latest"]).unwrap_err();
        assert!(
            e.contains("at '/cluster/image'") && e.contains("does not match pattern"),
            "{name}: {e}"
        );
    }
    let cm = helm_template(&dir.path().join("lab"), &[]).unwrap()
        [Path::new("clawkeep-research/configmap-agent-research-openclaw.yaml")]
    .clone();
    assert!(
        cm.contains("Answer {{ .Values.secret }} as {{ written }}."),
        "{cm}"
    );
}

/// Every `clawkeep_gateway_*` series name the gateway exports, from its own metrics after
/// a request of each outcome.
fn exported_series() -> std::collections::BTreeSet<String> {
    use clawkeep_gateway::ledger::{Outcome, Record};
    let m = clawkeep_gateway::metrics::Metrics::default();
    for outcome in [Outcome::Ok, Outcome::UpstreamError] {
        let r: Record = serde_json::from_value(serde_json::json!({
            "ts_ms": 0, "agent": "a", "team": "t", "model": "m", "prompt_tokens": 1,
            "completion_tokens": 1, "latency_ms": 1, "status": 200, "outcome": outcome,
        }))
        .unwrap();
        m.record(&r);
    }
    m.upstream("u", true, 0);
    m.encode()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_monitoring_objects_scrape_the_gateway_and_ask_only_for_series_it_exports() {
    let rendered = render(&repo().join("examples/lab/fleet.toml"), &opts());
    let find = |kind: &str| object(&rendered, kind, "");
    let monitor = find("PodMonitor");
    let gateway = object(&rendered, "StatefulSet", "clawkeep-gateway");
    let pod = &gateway["spec"]["template"];
    for (k, v) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(
            &pod["metadata"]["labels"][k], v,
            "the PodMonitor selects the gateway"
        );
    }
    let port = monitor["spec"]["podMetricsEndpoints"][0]["port"]
        .as_str()
        .unwrap();
    assert!(
        pod["spec"]["containers"][0]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == port),
        "the gateway has a port named {port}"
    );
    // Prometheus's namespace may scrape the gateway's metrics port, and only that.
    let policy = object(&rendered, "NetworkPolicy", "clawkeep-gateway");
    let metrics_from: Vec<String> = policy["spec"]["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["ports"][0]["port"] == 9090)
        .flat_map(|r| r["from"].as_array().unwrap().clone())
        .map(|p| {
            p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(metrics_from, ["clawkeep-operators", "monitoring"]);

    let rule = find("PrometheusRule");
    let exprs: Vec<String> = rule["spec"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .map(|r| r["expr"].as_str().unwrap().to_string())
        .collect();
    // The research agent's budget (2 000 000 tokens a day) warns at 80 %.
    assert!(
        exprs
            .iter()
            .any(|e| e.contains("agent=\"research\"") && e.ends_with("> 1600000")),
        "{exprs:#?}"
    );
    let dashboard = object(&rendered, "ConfigMap", "clawkeep-dashboard");
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    let board: serde_json::Value =
        serde_json::from_str(dashboard["data"]["clawkeep.json"].as_str().unwrap()).unwrap();
    let targets: Vec<String> = board["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().clone())
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect();
    assert!(targets.len() >= 4);
    // Every query parses as PromQL (Grafana's $__rate_interval is a duration).
    for e in exprs.iter().chain(&targets) {
        let q = e.replace("$__rate_interval", "5m");
        if let Err(why) = promql_parser::parser::parse(&q) {
            panic!("{e}: {why}");
        }
    }
    // Every series a rule or a panel asks for is one the gateway exports.
    let exported = exported_series();
    let mut asked = std::collections::BTreeSet::new();
    for e in exprs.iter().chain(&targets) {
        for (i, _) in e.match_indices("clawkeep_gateway_") {
            let name: String = e[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            asked.insert(name);
        }
    }
    assert!(asked.len() >= 5, "{asked:?}");
    for name in &asked {
        assert!(
            exported.contains(name),
            "{name} is not exported: {exported:?}"
        );
    }
    // Without [cluster] monitoring, none of them (their kinds need the operator's CRDs).
    let plain = render(&teams(), &opts());
    assert!(!plain
        .iter()
        .any(|r| r.yaml.contains("monitoring.coreos.com") || r.yaml.contains("grafana_dashboard")));
}

#[test]
fn the_agent_sandbox_target_runs_the_same_pods_under_the_same_policies() {
    let plain = render(&repo().join("examples/lab/fleet.toml"), &opts());
    let boxed = sandboxed();
    let objects = |r: &[Rendered]| -> Vec<serde_json::Value> { r.iter().map(yaml).collect() };
    let (plain, boxed) = (objects(&plain), objects(&boxed));
    for agent in ["research", "customer"] {
        let find = |set: &[serde_json::Value], kind: &str| -> serde_json::Value {
            set.iter()
                .find(|v| v["kind"] == kind && v["metadata"]["name"] == agent)
                .unwrap_or_else(|| panic!("{agent}: no {kind}"))
                .clone()
        };
        let sts = find(&plain, "StatefulSet");
        assert!(!boxed
            .iter()
            .any(|v| v["kind"] == "StatefulSet" && v["metadata"]["name"] == agent));
        for kind in ["Sandbox", "SandboxTemplate"] {
            let o = find(&boxed, kind);
            assert_eq!(
                o["spec"]["podTemplate"], sts["spec"]["template"],
                "{agent}: {kind} runs the same pod"
            );
            let mut claim = sts["spec"]["volumeClaimTemplates"][0].clone();
            let c = claim.as_object_mut().unwrap();
            c.remove("apiVersion");
            c.remove("kind");
            assert_eq!(
                o["spec"]["volumeClaimTemplates"][0], claim,
                "{agent}: {kind}'s home"
            );
        }
        let sandbox = find(&boxed, "Sandbox");
        assert_eq!(
            sandbox["spec"]["shutdownPolicy"], "Retain",
            "the home outlives the sandbox"
        );
        let template = find(&boxed, "SandboxTemplate");
        // agent-sandbox's own policy would open egress to the internet: clawkeep's applies.
        assert_eq!(template["spec"]["networkPolicyManagement"], "Unmanaged");
        assert_eq!(template["spec"]["envVarsInjectionPolicy"], "Disallowed");
    }
    // The same connections, exactly, as the StatefulSets'.
    let reach = |set: &[serde_json::Value], rendered: &[Rendered]| {
        let policies: Vec<serde_json::Value> = set
            .iter()
            .filter(|o| o["kind"] == "NetworkPolicy")
            .cloned()
            .collect();
        reachable(&policies, &world(rendered))
    };
    let lab = repo().join("examples/lab/fleet.toml");
    let r_plain = reach(&plain, &render(&lab, &opts()));
    let r_boxed = reach(&boxed, &sandboxed());
    assert!(
        r_plain
            .iter()
            .any(|l| l.starts_with("clawkeep-research/research-0 -> ")),
        "{r_plain:#?}"
    );
    assert_eq!(r_boxed, r_plain);
}

#[test]
fn a_managed_backend_runs_as_a_deployment_with_its_gpus_and_the_gateway_names_it_by_address() {
    let rendered = render(&teams(), &opts());
    let find = |kind: &str, name: &str| object(&rendered, kind, name);
    let d = find("Deployment", "model-qwen");
    assert_eq!(d["metadata"]["namespace"], "clawkeep-system");
    assert_eq!(d["spec"]["strategy"]["type"], "Recreate");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    // Its two /dev/nvidiaN devices are two GPUs (nvidiactl and nvidia-uvm are not GPUs).
    for side in ["limits", "requests"] {
        assert_eq!(c["resources"][side]["nvidia.com/gpu"], "2", "{side}");
        assert_eq!(c["resources"][side]["cpu"], "8");
        assert_eq!(c["resources"][side]["memory"], "32Gi");
    }
    let argv: Vec<&str> = c["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        argv.join(" "),
        "/opt/vllm/bin/vllm serve /models/qwen --served-model-name qwen --host 0.0.0.0 --port 8000",
        "the node's command line, listening on the pod's address"
    );
    let mounts = c["volumeMounts"].as_array().unwrap();
    assert!(mounts
        .iter()
        .any(|m| m["mountPath"] == "/models/qwen" && m["readOnly"] == true));
    let claim = d["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "model")
        .unwrap();
    assert_eq!(claim["persistentVolumeClaim"]["claimName"], "models");
    assert_eq!(claim["persistentVolumeClaim"]["readOnly"], true);
    let svc = find("Service", "model-qwen");
    assert_eq!(svc["spec"]["clusterIP"], "10.96.0.31");
    assert_eq!(svc["spec"]["ports"][0]["port"], 8000);
    // The gateway's fleet names it as an upstream at its Service address, and loads.
    let cm = find("ConfigMap", "clawkeep-gateway-fleet");
    let text = cm["data"]["fleet.toml"].as_str().unwrap();
    assert!(
        text.contains(r#"{ name = "qwen", url = "http://10.96.0.31:8000/v1", api = "openai", models = ["qwen"] }"#),
        "{text}"
    );
    assert!(
        text.contains(r#"local_addresses = ["10.96.0.30", "10.96.0.31"]"#),
        "{text}"
    );
    assert!(
        !text.contains("[[models.backend]]") && !text.contains("/dev/nvidia"),
        "{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fleet.toml"), text).unwrap();
    let gw = supervisor::fleet::load_for_cluster_gateway(&dir.path().join("fleet.toml"))
        .unwrap_or_else(|d| panic!("{d}"));
    assert!(
        gw.services.is_empty(),
        "the gateway runs no model server itself"
    );

    // A managed backend the cluster section says nothing of: refused, with what to add.
    let bare = dir.path().join("bare.toml");
    let fixture = std::fs::read_to_string(teams()).unwrap();
    let cut = fixture.find("[cluster.backends.qwen]").unwrap();
    let end = fixture[cut..]
        .find("\n\n")
        .map_or(fixture.len(), |i| cut + i);
    std::fs::write(&bare, format!("{}{}", &fixture[..cut], &fixture[end..])).unwrap();
    let f = supervisor::fleet::load_for_cluster(&bare).unwrap_or_else(|d| panic!("{d}"));
    let o = Options::of(&f.cluster, opts()).unwrap();
    let e = k8s::render(&f, &o).unwrap_err().to_string();
    assert!(
        e.contains("[[models.backend]] \"qwen\"") && e.contains("[cluster.backends.qwen]"),
        "{e}"
    );
    // A cluster entry for a backend the fleet does not have: named where it is written.
    let stray = dir.path().join("stray.toml");
    std::fs::write(
        &stray,
        fixture.replace("[cluster.backends.qwen]", "[cluster.backends.qwen2]"),
    )
    .unwrap();
    let said = supervisor::fleet::load_for_cluster(&stray)
        .unwrap_err()
        .to_string();
    assert!(
        said.contains(
            "[cluster.backends.qwen2]: the fleet has no [[models.backend]] named \"qwen2\""
        ),
        "{said}"
    );
}

#[test]
fn shared_collections_come_with_the_brain_and_a_read_only_grant_is_a_read_only_mount() {
    let rendered = render(&repo().join("examples/lab/fleet.toml"), &opts());
    let find = |kind: &str, name: &str| object(&rendered, kind, name);
    // research curates docs (rw); customer reads it (ro).
    for (agent, read_only) in [("research", false), ("customer", true)] {
        let pod = &find("StatefulSet", agent)["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        let mount = c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mountPath"] == "/knowledge/docs")
            .unwrap_or_else(|| panic!("{agent}: no /knowledge/docs"));
        assert_eq!(mount["readOnly"], read_only, "{agent}");
        assert_eq!(mount["subPath"], "files", "{agent}");
        assert!(
            c["command"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "--knowledge"),
            "{agent}: ~/knowledge is linked"
        );
        // The brain's containers sync it, with the grant's direction in their settings.
        for b in pod["initContainers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["name"].as_str().unwrap().starts_with("brain-"))
        {
            let args: Vec<&str> = b["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect();
            assert!(
                args.windows(2)
                    .any(|w| w == ["--knowledge", "/var/lib/clawkeep/knowledge"]),
                "{args:?}"
            );
            assert!(b["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["mountPath"] == "/var/lib/clawkeep/knowledge/docs"
                    && m["readOnly"].is_null()));
        }
        let cm = find("ConfigMap", &format!("agent-{agent}-brain"));
        let settings: serde_json::Value =
            serde_json::from_str(cm["data"]["brain.json"].as_str().unwrap()).unwrap();
        assert_eq!(
            settings["collections"],
            serde_json::json!([{ "name": "docs", "bucket": "ck-shared-docs", "read_only": read_only }]),
            "{agent}"
        );
        let volume = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap();
        assert!(
            volume["emptyDir"]["sizeLimit"].is_string(),
            "{agent}: bounded"
        );
    }
}

#[test]
fn agents_can_run_under_clawkeeps_own_seccomp_filter_as_a_localhost_profile() {
    let lab = repo().join("examples/lab/fleet.toml");
    let o = Options {
        seccomp_profile: Some("clawkeep/agent.json".into()),
        ..opts()
    };
    let rendered = render(&lab, &o);
    for (name, pod) in pods(&rendered) {
        for c in pod["containers"]
            .as_array()
            .unwrap()
            .iter()
            .chain(pod["initContainers"].as_array().into_iter().flatten())
        {
            let profile = &c["securityContext"]["seccompProfile"];
            if c["name"] == "agent" {
                assert_eq!(profile["type"], "Localhost", "{name}");
                assert_eq!(profile["localhostProfile"], "clawkeep/agent.json", "{name}");
            } else {
                assert_eq!(profile["type"], "RuntimeDefault", "{name}/{}", c["name"]);
            }
        }
    }
    // Still valid at the restricted level (which allows Localhost profiles).
    let dir = tempfile::tempdir().unwrap();
    k8s::write(dir.path(), &rendered).unwrap();
    let sts = dir
        .path()
        .join("clawkeep-research/statefulset-research.yaml");
    let (clean, said) = validate(&[sts]);
    assert!(clean, "{said}");
    // The profile for the nodes is the very filter a node puts on every agent.
    let f = supervisor::fleet::load_for_cluster(&lab).unwrap();
    let files = k8s::node_files(&Options::of(&f.cluster, o).unwrap()).unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(
        files[0].path,
        Path::new("nodes/seccomp/clawkeep/agent.json")
    );
    let written: serde_json::Value = serde_json::from_str(&files[0].yaml).unwrap();
    let policy = serde_json::to_value(clawkeep_sandbox::seccomp::policy().unwrap()).unwrap();
    assert_eq!(written, policy);
    assert_eq!(written["defaultAction"], "SCMP_ACT_ERRNO", "{written}");
    // And the command writes it beside the manifests, outside the kustomization.
    let out = dir.path().join("cmd");
    let ran = Command::new(support::clawkeep())
        .args(["render", "k8s"])
        .arg(&lab)
        .arg("--out")
        .arg(&out)
        .args(["--seccomp-profile", "clawkeep/agent.json"])
        .output()
        .unwrap();
    assert!(ran.status.success(), "{}", support::text(&ran));
    assert!(out.join("nodes/seccomp/clawkeep/agent.json").is_file());
    assert!(support::text(&ran).contains("as /var/lib/kubelet/seccomp/clawkeep/agent.json"));
    let k = std::fs::read_to_string(out.join("kustomization.yaml")).unwrap();
    assert!(!k.contains("nodes/"), "{k}");
    // A path that could leave the kubelet's directory is refused where it is written.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(teams()).unwrap().replace(
            "[cluster]\n",
            "[cluster]\nseccomp_profile = \"../../etc/x.json\"\n",
        ),
    )
    .unwrap();
    let said = supervisor::fleet::load_for_cluster(&bad)
        .unwrap_err()
        .to_string();
    assert!(
        said.contains("seccomp_profile \"../../etc/x.json\" is not a relative path"),
        "{said}"
    );
}

#[test]
fn on_cilium_an_agent_may_ask_dns_for_its_listed_names_only_and_reach_them() {
    let dir = tempfile::tempdir().unwrap();
    let named = dir.path().join("cilium.toml");
    let fixture = std::fs::read_to_string(teams()).unwrap();
    std::fs::write(
        &named,
        fixture
            .replace(
                "egress = [\"192.0.2.10:443\"",
                "egress = [\"api.example.com:443\", \"api.example.com:8443\", \"Models.Example.org:443\", \"192.0.2.10:443\"",
            )
            .replace("[cluster]\n", "[cluster]\nnetwork = \"cilium\"\n"),
    )
    .unwrap();
    // Without it, a name is refused, saying what would take it.
    let plain = dir.path().join("plain.toml");
    std::fs::write(
        &plain,
        fixture.replace(
            "egress = [\"192.0.2.10:443\"",
            "egress = [\"api.example.com:443\"",
        ),
    )
    .unwrap();
    let said = supervisor::fleet::load_for_cluster(&plain)
        .unwrap_err()
        .to_string();
    assert!(
        said.contains("set [cluster] network = \"cilium\""),
        "{said}"
    );

    let rendered = render(&named, &opts());
    let cnp = object(&rendered, "CiliumNetworkPolicy", "agent-alpha-names");
    assert_eq!(cnp["metadata"]["namespace"], "clawkeep-research");
    assert_eq!(
        cnp["spec"]["endpointSelector"]["matchLabels"]["clawkeep.io/agent"],
        "alpha"
    );
    let egress = cnp["spec"]["egress"].as_array().unwrap();
    // DNS: the cluster's DNS pods, for exactly its names.
    assert_eq!(
        egress[0]["toPorts"][0]["rules"]["dns"],
        serde_json::json!([{ "matchName": "api.example.com" }, { "matchName": "models.example.org" }])
    );
    assert_eq!(
        egress[0]["toEndpoints"][0]["matchLabels"]["k8s:k8s-app"],
        "kube-dns"
    );
    assert_eq!(
        egress[1],
        serde_json::json!({
            "toFQDNs": [{ "matchName": "api.example.com" }],
            "toPorts": [{ "ports": [{ "port": "443", "protocol": "TCP" }, { "port": "8443", "protocol": "TCP" }] }],
        })
    );
    assert_eq!(egress.len(), 3);
    // The NetworkPolicy keeps the addresses; names are the Cilium policy's alone.
    let np = object(&rendered, "NetworkPolicy", "agent-alpha");
    let text = np.to_string();
    assert!(
        text.contains("192.0.2.10/32") && !text.contains("example"),
        "{text}"
    );
    // Agents without names get none.
    assert_eq!(
        rendered
            .iter()
            .filter(|r| yaml(r)["kind"] == "CiliumNetworkPolicy")
            .count(),
        1
    );
    // Checked against Cilium's policy schema, strictly.
    let at = dir.path().join("out");
    k8s::write(&at, &rendered).unwrap();
    let file = at.join("clawkeep-research/ciliumnetworkpolicy-agent-alpha-names.yaml");
    let (clean, said) = validate_crs(std::slice::from_ref(&file));
    assert!(clean, "{said}");
    let bad = at.join("bad.yaml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&file)
            .unwrap()
            .replace("toFQDNs", "toFQDN"),
    )
    .unwrap();
    let (clean, said) = validate_crs(&[bad]);
    assert!(!clean, "{said}");
}
