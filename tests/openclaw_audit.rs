//! `clawkeep audit`'s OpenClaw checks on a state dir prepared as `clawkeep up` prepares it
//! (openclaw.json written into each home, tokens minted), without starting any gateway: the
//! real pinned runtime's `openclaw security audit` runs on a copy of each configuration in a
//! real sandbox. A clean fleet has no finding; a world-readable config, a bind changed to
//! "lan" on disk and a weak token are each flagged against the right agent, and no token
//! appears in the report.

#[path = "../supervisor/tests/support/mod.rs"]
mod support;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clawkeep_sandbox::launch::Host;
use supervisor::audit::AuditReport;
use supervisor::engine::reaper::Reaper;
use supervisor::engine::start::{write_agent_bundle, Paths};
use supervisor::engine::Shared;
use supervisor::openclaw::token;
use support::{FleetDir, Scratch};

fn ids_of<'a>(r: &'a AuditReport, agent: &str) -> Vec<&'a str> {
    r.findings
        .iter()
        .filter(|f| f.subject == agent)
        .map(|f| f.id.as_str())
        .collect()
}

#[test]
fn openclaw_agents_audited_from_their_files_and_by_openclaw_itself() {
    // Everything that forks std processes happens before the reaper starts.
    let rts = Scratch::new("oc-audit-runtimes");
    // The sandbox's init runs as the agent's unprivileged uid, which must reach the binary:
    // a copy in a scratch dir (0711), not target/ (a checkout may sit in a 0700 directory).
    let init_exe = rts.dir.join("clawkeep");
    std::fs::copy(support::clawkeep(), &init_exe).unwrap();
    let runtime = support::install_runtime(&rts.dir.join("runtimes"));
    let runtime_lines = format!(
        "openclaw = \"2026.9.6\"\nnode = \"24\"\nruntimes = \"{}\"",
        rts.dir.join("runtimes").display()
    );
    let body = "[defaults]\nmemory = \"2GiB\"\n\n[[agent]]\nname = \"research\"\ngateway_port = 18901\n\n[[agent]]\nname = \"writer\"\n";
    let dir = FleetDir::with_runtime("oc-audit", &runtime_lines, body);
    support::add_libs_for(
        &dir.scratch.dir.join("rootfs"),
        &runtime.join("node/bin/node"),
    );
    let fleet = supervisor::fleet::load(&dir.fleet).unwrap_or_else(|d| panic!("{d}"));
    let paths = Paths {
        state_dir: dir.state.clone(),
    };
    for a in &fleet.agents {
        write_agent_bundle(&fleet, a, &paths, None).unwrap();
        token::load_or_mint(&paths.token(&a.name)).unwrap();
    }
    let tokens: Vec<String> = ["research", "writer"]
        .iter()
        .map(|a| token::load_or_mint(&paths.token(a)).unwrap())
        .collect();
    let shared = Arc::new(Shared {
        fleet,
        paths: paths.clone(),
        host: Host {
            root: "/".into(),
            proc_root: "/proc".into(),
            init_exe: init_exe.clone(),
        },
        reaper: Reaper::default(),
        processes: Vec::new(),
        gateway: None,
        brains: None,
        upgrades: Default::default(),
        launcher: Arc::new(supervisor::engine::sandbox_launcher::SandboxLauncher),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async { shared.reaper.start() }).unwrap();
    let audit = || {
        let t = Instant::now();
        let r = rt.block_on(supervisor::audit::run(&shared));
        eprintln!("audit: {} findings in {:?}", r.findings.len(), t.elapsed());
        (r, t.elapsed())
    };

    let (clean, took) = audit();
    assert!(clean.findings.is_empty(), "{:#?}", clean.findings);
    assert!(took < Duration::from_secs(25), "took {took:?}");
    for id in [
        "CK-OC-001",
        "CK-OC-002",
        "CK-OC-003",
        "CK-OC-004",
        "CK-OC-AUDIT",
    ] {
        assert!(clean.checks.iter().any(|(c, _)| c == id), "{id} is listed");
    }
    let home = |a: &str| paths.agent(a).join("home/.openclaw");
    assert!(
        !paths.agent("research").join("audit").exists(),
        "the copy is removed"
    );

    // Broken the ways an agent or a person could while it runs.
    let cfg = home("research").join("openclaw.json");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replace("\"loopback\"", "\"lan\"")).unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    token::write(&paths.token("writer"), "abc").unwrap();

    let (broken, took) = audit();
    for f in &broken.findings {
        eprintln!("{} {} {}: {}", f.id, f.severity, f.subject, f.message);
    }
    assert!(took < Duration::from_secs(25), "took {took:?}");
    let research = ids_of(&broken, "research");
    assert!(research.contains(&"CK-OC-001"), "{:#?}", broken.findings);
    assert!(research.contains(&"CK-OC-002"), "{:#?}", broken.findings);
    assert!(
        research
            .iter()
            .any(|id| id.starts_with("CK-OC-AUDIT/gateway.")),
        "OpenClaw itself flags the lan bind: {:#?}",
        broken.findings
    );
    let writer = ids_of(&broken, "writer");
    assert!(writer.contains(&"CK-OC-003"), "{:#?}", broken.findings);
    assert!(
        writer.contains(&"CK-OC-AUDIT/gateway.token_too_short"),
        "{:#?}",
        broken.findings
    );
    assert!(!research.contains(&"CK-OC-003") && !writer.contains(&"CK-OC-002"));
    let json = serde_json::to_string(&broken).unwrap();
    assert!(
        !json.contains(&tokens[0]) && !json.contains(&tokens[1]),
        "a token in the report"
    );
}
