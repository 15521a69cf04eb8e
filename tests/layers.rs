//! The workspace's crates depend one way (the supervisor on the sandbox, the store, the
//! gateway and the image builder; those on no other of the four, and the sandbox on no crate
//! of the workspace; the store and the supervisor share the confinement helper, a leaf), and the supervisor's
//! modules stand in layers, each using only modules of lower layers: no module cycles, and
//! a newcomer can read the crate from the bottom up. A `crate::X` path in a module's code
//! (comments aside) is a use of X. A new module must be placed here; a use that runs up a
//! layer fails this test and names itself.

use std::collections::BTreeMap;
use std::path::Path;

/// Lowest first. Modules of one layer do not use each other.
const LAYERS: &[&[&str]] = &[
    // Tools with no knowledge of the fleet.
    &["text", "tcp_peer", "pid1", "power_button", "findings"],
    // The fleet file and what it means.
    &["fleet"],
    &["secrets", "spend", "node_image"],
    // What goes into an agent before it starts: OpenClaw's state, its brain.
    &["openclaw", "brains"],
    // Where else clawkeep runs: in a Kubernetes pod, under systemd; then the rendering for a
    // cluster (which names the pods' commands and files) and the cluster's gateway.
    &["pod", "systemd"],
    &["k8s", "cluster_gateway"],
    // Supervision.
    &["engine"],
    // Checks of the running node.
    &["openclaw_checks", "sandbox_audit"],
    &["audit"],
    &["doctor"],
    // The control API, then `up`, which starts everything.
    &["api"],
    &["up"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The modules `text` uses through `crate::` paths, outside comments.
fn uses(text: &str, out: &mut Vec<String>) {
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
}

fn module_files(path: &Path, out: &mut Vec<std::path::PathBuf>) {
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap().flatten() {
            module_files(&e.path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

#[test]
fn each_module_uses_only_modules_of_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../supervisor/src");
    let mut graph: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let module = name.trim_end_matches(".rs").to_string();
        // The binary: main.rs and its own modules in cli/ sit above every layer.
        if module == "lib" || module == "main" || module == "cli" {
            continue;
        }
        let mut files = Vec::new();
        module_files(&e.path(), &mut files);
        let mut used = Vec::new();
        for f in files {
            uses(&std::fs::read_to_string(f).unwrap(), &mut used);
        }
        used.sort();
        used.dedup();
        used.retain(|u| *u != module);
        graph.insert(module, used);
    }
    assert!(graph.len() > 15, "found only {graph:?}");
    let mut wrong = Vec::new();
    for (module, used) in &graph {
        let Some(mine) = layer_of(module) else {
            wrong.push(format!(
                "{module} is in no layer: add it to LAYERS in tests/layers.rs"
            ));
            continue;
        };
        for u in used {
            match layer_of(u) {
                Some(theirs) if theirs < mine => {}
                Some(theirs) => wrong.push(format!(
                    "{module} (layer {mine}) uses {u} (layer {theirs}): move what it needs down, or pass it in"
                )),
                None => wrong.push(format!("{module} uses {u}, which is in no layer")),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The workspace crates each package's `[dependencies]` name by path.
fn path_dependencies(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    let mut out: Vec<String> = doc
        .get("dependencies")
        .and_then(|d| d.as_table())
        .map(|deps| {
            deps.iter()
                .filter(|(_, v)| v.get("path").is_some())
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn the_crates_depend_one_way_with_the_sandbox_at_the_bottom() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let expected: &[(&str, &[&str])] = &[
        (
            "supervisor",
            &[
                "clawkeep-beneath",
                "clawkeep-gateway",
                "clawkeep-image",
                "clawkeep-sandbox",
                "clawkeep-store",
            ],
        ),
        ("supervisor/sandbox", &[]),
        ("minio", &["clawkeep-beneath"]),
        ("beneath", &[]),
        ("ollama", &[]),
        ("image", &[]),
        ("stage1", &[]),
        ("tests", &[]),
        // The fuzz targets sit on top, like the binary: they reach each parser.
        (
            "fuzz",
            &[
                "clawkeep-gateway",
                "clawkeep-sandbox",
                "clawkeep-store",
                "supervisor",
            ],
        ),
    ];
    for (dir, deps) in expected {
        assert_eq!(
            path_dependencies(&root.join(dir).join("Cargo.toml")),
            *deps,
            "{dir}/Cargo.toml: the crates must depend one way (see README.md, Layout)"
        );
    }
}
