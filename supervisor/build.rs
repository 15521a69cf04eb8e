//! Build facts `clawkeep --version` shows: the commit (from git, when building in a
//! checkout), the compiler, the target and the profile. No time stamp and no "dirty" mark
//! (which would rebuild at every `git add`): the same commit builds the same binary.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]);
    println!(
        "cargo:rustc-env=CLAWKEEP_COMMIT={}",
        commit.as_deref().unwrap_or("unknown commit")
    );
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=CLAWKEEP_RUSTC={version}");
    println!(
        "cargo:rustc-env=CLAWKEEP_TARGET={}",
        std::env::var("TARGET").unwrap_or_default()
    );
    println!(
        "cargo:rustc-env=CLAWKEEP_PROFILE={}",
        std::env::var("PROFILE").unwrap_or_default()
    );
    // Again when the checked-out commit moves (HEAD, the branch it names, packed refs).
    if let Some(git_dir) = git(&["rev-parse", "--git-dir"]) {
        let git_dir = Path::new(&git_dir);
        for f in ["HEAD", "packed-refs"] {
            println!("cargo:rerun-if-changed={}", git_dir.join(f).display());
        }
        if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={}", git_dir.join(head).display());
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
