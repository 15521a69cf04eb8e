//! The workspace's `unsafe` stays in one file of one crate: the workspace denies the
//! `unsafe_code` lint, every crate root but the sandbox crate's forbids it, and no source file
//! but `supervisor/sandbox/src/sys.rs` allows it or holds `unsafe` code. A file that allows
//! the lint for itself, or a crate that stops forbidding it, fails this test, so the boundary
//! cannot move silently.

use std::path::{Path, PathBuf};

/// The one file allowed `unsafe`, relative to the workspace root.
const ALLOWED: &str = "supervisor/sandbox/src/sys.rs";

/// The crate roots that must forbid `unsafe` outright: every crate but the sandbox.
const FORBIDDING: [&str; 9] = [
    "supervisor/src/lib.rs",
    "supervisor/src/main.rs",
    "minio/src/lib.rs",
    "ollama/src/lib.rs",
    "image/src/lib.rs",
    "stage1/src/main.rs",
    "beneath/src/lib.rs",
    "tests/lib.rs",
    "fuzz/src/lib.rs",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if p.is_dir() {
            rust_files(&p, out);
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
}

#[test]
fn unsafe_code_is_allowed_in_one_file_only() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    // Spelled in two parts so that this file does not match itself.
    let marks = [
        concat!("allow(", "unsafe_code)"),
        concat!("unsafe", " {"),
        concat!("unsafe", " fn "),
        concat!("unsafe", " impl"),
        concat!("unsafe", " extern"),
        concat!("unsafe", " trait"),
    ];
    let mut files = Vec::new();
    rust_files(root, &mut files);
    assert!(files.len() > 50, "found only {} Rust files", files.len());
    let mut found = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if rel == ALLOWED {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if marks.iter().any(|m| code.contains(m)) {
                found.push(format!("{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "unsafe code outside {ALLOWED} (move it there, behind a safe function):\n{}",
        found.join("\n")
    );
    let sys = std::fs::read_to_string(root.join(ALLOWED)).unwrap();
    assert!(
        sys.contains(marks[0]),
        "{ALLOWED} no longer allows unsafe_code"
    );
}

#[test]
fn every_crate_but_the_sandbox_forbids_unsafe_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let members = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let mut missing = Vec::new();
    for f in FORBIDDING {
        let text = std::fs::read_to_string(root.join(f)).unwrap();
        if !text.lines().any(|l| l.trim() == "#![forbid(unsafe_code)]") {
            missing.push(f);
        }
        let member = f.rsplit_once('/').unwrap().0.trim_end_matches("/src");
        assert!(
            members.contains(&format!("\"{member}\"")),
            "{member} is no longer a workspace member: update FORBIDDING"
        );
    }
    assert!(
        missing.is_empty(),
        "these crate roots no longer say #![forbid(unsafe_code)] (put it back; unsafe code \
         belongs in {ALLOWED}): {missing:?}"
    );
    // Every member is either the sandbox or has its roots listed above.
    let line = members.lines().find(|l| l.starts_with("members")).unwrap();
    for member in line.split('"').skip(1).step_by(2) {
        assert!(
            member == "supervisor/sandbox"
                || FORBIDDING
                    .iter()
                    .any(|f| f.starts_with(&format!("{member}/"))),
            "workspace member {member} is not in FORBIDDING: add its crate root(s)"
        );
    }
}
