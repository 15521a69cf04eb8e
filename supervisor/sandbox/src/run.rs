//! `clawkeep run BUNDLE`: run one OCI bundle in the foreground with clawkeep's launcher, as
//! `runc run` does, and clean up its cgroup afterwards.

use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use nix::sys::wait::{waitpid, WaitStatus};
use oci_spec::runtime::Spec;

use super::launch::{self, Host};
use super::status::{parse_report, ExitReason, Report};
use super::SandboxError;

fn dup(fd: std::os::fd::BorrowedFd<'_>) -> Result<OwnedFd, SandboxError> {
    fd.try_clone_to_owned()
        .map_err(|e| SandboxError::Init(format!("dup stdio: {e}")))
}

/// Run the bundle in `dir` with this process's stdout and stderr; return how it ended.
pub fn run_bundle(dir: &Path, host: &Host) -> Result<ExitReason, SandboxError> {
    let dir = std::path::absolute(dir).map_err(|e| SandboxError::Io {
        path: dir.to_path_buf(),
        what: "resolve".into(),
        source: e,
    })?;
    let spec = Spec::load(dir.join("config.json"))
        .map_err(|e| SandboxError::Spec(format!("{}/config.json: {e}", dir.display())))?;
    let stdout = dup(std::io::stdout().as_fd())?;
    let stderr = dup(std::io::stderr().as_fd())?;
    let starting = launch::sandbox(&dir, &spec, stdout, stderr, None, host)?;
    let started = starting.start()?;
    let mut last = None;
    let mut error = None;
    if let Some(status) = started.status {
        for line in BufReader::new(std::fs::File::from(status)).lines() {
            let Ok(line) = line else { break };
            match parse_report(&line) {
                Some(Report::Exit(e)) => last = Some(e),
                Some(Report::Error(e)) => error = Some(e),
                _ => {}
            }
        }
    }
    let waited = loop {
        match waitpid(started.pid, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other,
        }
    };
    let mut oom = false;
    if let Some(cg) = started.cgroup {
        oom = cg.oom_kills() > 0;
        cg.kill_all(Duration::from_secs(5))?;
        cg.destroy()?;
    }
    if let Some(e) = error {
        return Err(SandboxError::Init(e));
    }
    Ok(match (last, waited) {
        (Some(ExitReason::Signal(9)), _) if oom => ExitReason::Oom,
        (Some(e), _) => e,
        (None, Ok(WaitStatus::Signaled(_, sig, _))) => ExitReason::Signal(sig as i32),
        (None, Ok(WaitStatus::Exited(_, code))) => ExitReason::Code(code),
        (None, _) => ExitReason::StartFailed,
    })
}
