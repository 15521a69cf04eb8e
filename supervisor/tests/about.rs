//! What the binary says of itself and how shells and `man` learn its command line:
//! `--version` names the commit, `completions` loads in bash (and writes zsh and fish), and
//! `man` writes a page per command that `man` renders; the exit codes scripts rely on.

mod support;

use std::process::Command;

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(support::clawkeep())
        .args(args)
        .output()
        .unwrap();
    (out.status.success(), support::text(&out))
}

#[test]
fn the_version_names_the_commit_and_the_build() {
    let (ok, short) = run(&["-V"]);
    assert!(ok, "{short}");
    let commit = short
        .trim()
        .strip_prefix(concat!("clawkeep ", env!("CARGO_PKG_VERSION"), " ("))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{short}"));
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match head {
        // Built in this checkout (the binary is rebuilt when HEAD moves).
        Some(h) => assert_eq!(commit, h),
        None => assert_eq!(commit, "unknown commit"),
    }
    let (ok, long) = run(&["--version"]);
    assert!(ok);
    for line in ["commit: ", "rustc: rustc ", "target: x86_64", "profile: "] {
        assert!(long.contains(line), "{line:?} not in {long}");
    }
}

#[test]
fn bash_completions_load_and_complete_subcommands() {
    let (ok, script) = run(&["completions", "bash"]);
    assert!(ok, "{script}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clawkeep.bash");
    std::fs::write(&file, &script).unwrap();
    // As a user's shell: source it, ask what completes `clawkeep ren`.
    let probe = format!(
        r#"source {}; complete -p clawkeep; COMP_WORDS=(clawkeep ren); COMP_CWORD=1; COMP_LINE="clawkeep ren"; COMP_POINT=${{#COMP_LINE}}; _clawkeep clawkeep ren clawkeep; printf '%s\n' "${{COMPREPLY[@]}}""#,
        file.display()
    );
    let out = Command::new("bash").args(["-c", &probe]).output().unwrap();
    let said = support::text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("-F _clawkeep clawkeep"), "{said}");
    assert!(said.lines().any(|l| l == "render"), "{said}");
    for shell in ["zsh", "fish"] {
        let (ok, script) = run(&["completions", shell]);
        assert!(
            ok && script.contains("clawkeep") && script.contains("render"),
            "{shell}"
        );
    }
    let (ok, said) = run(&["completions", "tcsh"]);
    assert!(!ok && said.contains("bash"), "the shells it can: {said}");
}

#[test]
fn man_writes_a_page_per_command_that_man_renders() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, said) = run(&["man", &dir.path().display().to_string()]);
    assert!(ok, "{said}");
    for page in [
        "clawkeep.1",
        "clawkeep-up.1",
        "clawkeep-render-k8s.1",
        "clawkeep-pod-sync.1",
    ] {
        assert!(dir.path().join(page).is_file(), "{page}");
    }
    assert!(
        !std::fs::read_dir(dir.path()).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("__")),
        "hidden commands have no page"
    );
    let out = Command::new("man")
        .arg("-l")
        .arg(dir.path().join("clawkeep-render-k8s.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .unwrap();
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", support::text(&out));
    assert!(
        page.contains("NAME") && page.contains("clawkeep-render-k8s"),
        "{page}"
    );
    assert!(page.contains("--seccomp-profile"), "{page}");
    // Without a directory: clawkeep(1) on stdout.
    let (ok, one) = run(&["man"]);
    assert!(ok && one.contains(".TH clawkeep 1"), "{one}");
}

#[test]
fn exit_codes_tell_invalid_input_and_no_supervisor_apart_and_help_lists_them() {
    let (_, help) = run(&["--help"]);
    assert!(
        help.contains("Exit codes: 0 done; 1 failed") && help.contains("4 no"),
        "{help}"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let state = dir.path().display().to_string();
    let code = |cmd: &mut Command| {
        let out = cmd.output().unwrap();
        (out.status.code(), support::text(&out))
    };
    // Nothing listens: 4, saying how to start one.
    let (c, said) = code(Command::new(support::clawkeep()).args(["--state-dir", &state, "ps"]));
    assert_eq!(c, Some(4), "{said}");
    assert!(said.contains("no clawkeep supervisor is running"), "{said}");
    // A supervisor's socket this user may not use: 4, and "permission denied", not "not
    // running".
    let socket = dir.path().join(supervisor::api::SOCKET);
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    std::fs::set_permissions(&socket, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let (c, said) = code(
        Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(support::clawkeep())
            .args(["--state-dir", &state, "ps"]),
    );
    assert_eq!(c, Some(4), "{said}");
    assert!(
        said.contains("permission denied") && !said.contains("no clawkeep supervisor"),
        "{said}"
    );
    // A fleet file that is wrong: 2.
    let bad = dir.path().join("fleet.toml");
    std::fs::write(&bad, "[[agent]]\nname = 3\n").unwrap();
    let (c, said) = code(Command::new(support::clawkeep()).arg("check").arg(&bad));
    assert_eq!(c, Some(2), "{said}");
}
