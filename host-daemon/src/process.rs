//! The session's child processes (compositor, app, sound helpers): each in a process group of
//! its own, told by the kernel to die with the daemon, run as the session's account, with its
//! output in a log file whose tail goes into errors.
//!
//! The parent-death signal fires when the *thread* that spawned the child ends, so children
//! are spawned from async code (a runtime's thread, which lives as long as the runtime),
//! never from a `spawn_blocking` thread that may retire while the child runs.

use std::os::unix::fs::FileExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::Error;
use crate::account::Account;

/// What to start.
pub struct Spec<'a> {
    /// A short name for messages ("sway", "the app").
    pub name: &'a str,
    pub program: &'a str,
    pub args: &'a [String],
    /// The whole environment: nothing of the daemon's is passed on unless listed here.
    pub env: &'a [(String, String)],
    pub cwd: &'a Path,
    /// Run as this account (the daemon must be root); `None`: as the daemon's own user.
    pub account: Option<&'a Account>,
    /// Where stdout and stderr go: a file made anew in a directory root made (see
    /// [`crate::files`]: the session's user may have put anything at that name).
    pub log: PathBuf,
    /// What the child reads on stdin (nothing when `None`): something the daemon shares.
    pub stdin: Option<std::os::fd::OwnedFd>,
    /// Where stdout goes instead, when the daemon reads what the child writes.
    pub stdout: Option<std::os::fd::OwnedFd>,
    /// The signal the child gets when the daemon dies: SIGTERM for a process that cleans up
    /// its own children (a compositor), SIGKILL otherwise.
    pub death_signal: i32,
    /// The session's cgroup, which the child enters before it runs (see [`crate::cgroup`]).
    pub cgroup: Option<&'a crate::cgroup::Cgroup>,
}

/// The pipes of a helper: what it reads on stdin, where its stdout goes.
pub struct Pipes {
    pub stdin: Option<std::os::fd::OwnedFd>,
    pub stdout: Option<std::os::fd::OwnedFd>,
}

/// Start `host-daemon ARGS` (a hidden subcommand) as one of the session's processes in `dir`:
/// as its account, in its cgroup, logging to `NAME.log`, killed with the daemon. This very
/// executable, through the child's own link to it: the session's user may not be able to
/// reach the directory it was started from (a build under /root), and the link needs no
/// search permission on the way.
pub fn spawn_helper(
    name: &str,
    args: &[String],
    env: &[(String, String)],
    dir: &crate::account::RuntimeDir,
    account: Option<&Account>,
    pipes: Pipes,
) -> Result<Child, Error> {
    Child::spawn(Spec {
        name,
        program: "/proc/self/exe",
        args,
        env,
        cwd: dir.path(),
        account,
        log: dir.path().join(format!("{name}.log")),
        death_signal: libc::SIGKILL,
        stdin: pipes.stdin,
        stdout: pipes.stdout,
        cgroup: dir.cgroup(),
    })
}

/// A running child.
pub struct Child {
    name: String,
    child: tokio::process::Child,
    pid: i32,
    /// Its output, held open: what is read back for errors is what it wrote, whatever the
    /// session's user later puts at the file's name.
    log: std::fs::File,
    status: Option<ExitStatus>,
}

/// Find `program` on `PATH` (or take it as a path), so that a missing program is named with
/// what to do before anything starts: install `package`, or (an app's, with no package
/// known) give its path.
pub fn find(program: &str, package: Option<&str>) -> Result<PathBuf, Error> {
    let missing = || Error::Missing {
        program: program.to_string(),
        hint: match package {
            _ if program.contains('/') => "no such file".into(),
            Some(package) => format!("install it (Debian: apt-get install {package})"),
            None => "not on PATH: install it, or give its full path".into(),
        },
    };
    if program.contains('/') {
        return Path::new(program)
            .is_file()
            .then(|| PathBuf::from(program))
            .ok_or_else(missing);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(missing)
}

/// What `program args` prints (stdout and stderr), for a quick question such as `--help`;
/// killed, and an error, past `timeout`.
pub fn output_within(program: &Path, args: &[&str], timeout: Duration) -> Result<String, Error> {
    let what = format!("{} {}", program.display(), args.join(" "));
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(what.clone(), e))?;
    let deadline = std::time::Instant::now() + timeout;
    while child
        .try_wait()
        .map_err(|e| Error::io(what.clone(), e))?
        .is_none()
    {
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Timeout { what, timeout });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().map_err(|e| Error::io(what, e))?;
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The usual soft limit on open files, which programs that use select() rely on.
const CHILD_SOFT_FILES: libc::rlim_t = 1024;

/// The open-file limit a child starts with: the daemon raises its own soft limit to the hard
/// one (it serves many connections); a child gets the usual soft limit back (and may raise
/// it itself, as the daemon did). `None`: leave it as it is.
fn child_file_limit() -> Option<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid resource and a pointer to a live rlimit.
    let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    (read && limit.rlim_cur > CHILD_SOFT_FILES).then_some(libc::rlimit {
        rlim_cur: CHILD_SOFT_FILES,
        ..limit
    })
}

impl Child {
    pub fn spawn(spec: Spec) -> Result<Self, Error> {
        let (Some(dir), Some(name)) = (spec.log.parent(), spec.log.file_name()) else {
            return Err(Error::io(
                format!("{}", spec.log.display()),
                std::io::ErrorKind::InvalidInput.into(),
            ));
        };
        let log = crate::files::create(dir, Path::new(name), spec.account)?;
        let out = match spec.stdout {
            Some(pipe) => Stdio::from(pipe),
            None => Stdio::from(log.try_clone().map_err(|e| Error::io("log file", e))?),
        };
        let err = log.try_clone().map_err(|e| Error::io("log file", e))?;
        let mut command = tokio::process::Command::new(spec.program);
        command
            .args(spec.args)
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .current_dir(spec.cwd)
            .stdin(spec.stdin.map_or_else(Stdio::null, Stdio::from))
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .kill_on_drop(true);
        if let Some(account) = spec.account {
            // std drops supplementary groups (setgroups) before setuid when it runs as root.
            command.uid(account.uid).gid(account.gid);
        }
        let parent = std::process::id() as i32;
        let signal = spec.death_signal;
        let files = child_file_limit();
        let cgroup = spec.cgroup.map(crate::cgroup::Cgroup::procs_fd);
        // SAFETY: only async-signal-safe calls (write, setrlimit, prctl, getppid, _exit)
        // between fork and exec. They run after std's setuid, which would otherwise clear the
        // death signal.
        unsafe {
            command.pre_exec(move || {
                if let Some(procs) = cgroup {
                    crate::cgroup::enter(procs)?;
                }
                if let Some(files) = &files
                    && libc::setrlimit(libc::RLIMIT_NOFILE, files) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The daemon died between fork and prctl: nobody would ever signal us.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(|e| {
            let hint = match spec.account {
                Some(account) if e.kind() == std::io::ErrorKind::PermissionDenied => format!(
                    " as user {} (can that user reach and run it? every directory on its path \
                     must be open to it)",
                    account.name
                ),
                _ => String::new(),
            };
            Error::io(
                format!("starting {} ({}){hint}", spec.name, spec.program),
                e,
            )
        })?;
        let pid = child.id().map(|id| id as i32).unwrap_or(0);
        tracing::debug!(name = spec.name, pid, program = spec.program, "started");
        Ok(Self {
            name: spec.name.to_string(),
            child,
            pid,
            log,
            status: None,
        })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Wait for it to exit (cancel-safe: the status is kept once seen).
    pub async fn wait(&mut self) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        let status = self
            .child
            .wait()
            .await
            .unwrap_or_else(|_| ExitStatus::from_raw(libc::SIGKILL));
        self.status = Some(status);
        status
    }

    /// Whether it has exited, without waiting.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Stop its whole process group: SIGTERM, then SIGKILL after `grace`. Returns its status.
    pub async fn stop(&mut self, grace: Duration) -> ExitStatus {
        if let Some(status) = self.exited() {
            self.kill_group(libc::SIGKILL);
            return status;
        }
        self.kill_group(libc::SIGTERM);
        if let Ok(status) = tokio::time::timeout(grace, self.wait()).await {
            // Anything it left behind in its group goes too.
            self.kill_group(libc::SIGKILL);
            return status;
        }
        tracing::warn!(name = self.name, "did not stop within {grace:?}: killed");
        self.kill_group(libc::SIGKILL);
        tokio::time::timeout(Duration::from_secs(2), self.wait())
            .await
            .unwrap_or_else(|_| ExitStatus::from_raw(libc::SIGKILL))
    }

    fn kill_group(&self, signal: i32) {
        if self.pid > 0 {
            // SAFETY: a plain syscall; the group is ours (process_group(0) at spawn).
            unsafe { libc::kill(-self.pid, signal) };
        }
    }

    /// The last `lines` lines of its output, for an error message.
    pub fn tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }
}

/// The last `lines` lines of a log (at most its last 8 KiB), trimmed.
fn tail(file: &std::fs::File, lines: usize) -> String {
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(8192);
    let mut bytes = vec![0; (len - start) as usize];
    let mut got = 0;
    while got < bytes.len() {
        match file.read_at(&mut bytes[got..], start + got as u64) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    let text = String::from_utf8_lossy(&bytes[..got]);
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// How a process ended, in words: "exit status 3" or "killed by signal 9".
pub fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => "ended".into(),
    }
}

/// Wait up to `wait` (at least a millisecond) for `fd` to have something to read (or its
/// end); `false` when it has not. An interrupted wait is a `false` too.
pub(crate) fn readable(fd: std::os::fd::BorrowedFd<'_>, wait: Duration) -> std::io::Result<bool> {
    ready(fd, libc::POLLIN, wait)
}

/// Wait up to `wait` (at least a millisecond) for `events` on `fd`.
fn ready(fd: std::os::fd::BorrowedFd<'_>, events: i16, wait: Duration) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    let mut poll = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    let ms = wait.as_millis().clamp(1, i32::MAX as u128) as i32;
    // SAFETY: one pollfd, alive for the call.
    match unsafe { libc::poll(&mut poll, 1, ms) } {
        n if n > 0 => Ok(true),
        0 => Ok(false),
        _ => {
            let err = std::io::Error::last_os_error();
            match err.kind() {
                std::io::ErrorKind::Interrupted => Ok(false),
                _ => Err(err),
            }
        }
    }
}

/// Fill `buf` from `pipe` by `deadline`: `UnexpectedEof` when the writer ends first,
/// `TimedOut` when the deadline passes.
pub(crate) fn read_by(
    pipe: &mut (impl std::io::Read + std::os::fd::AsFd),
    buf: &mut [u8],
    deadline: Instant,
) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        if !readable(pipe.as_fd(), left)? {
            continue;
        }
        match pipe.read(&mut buf[filled..]) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Write `bytes` (at most a pipe's atomic 4096) to `pipe` by `deadline`: a reader that
/// leaves its pipe full is `TimedOut`, never a write that blocks for good.
pub(crate) fn write_by(
    pipe: &mut (impl std::io::Write + std::os::fd::AsFd),
    bytes: &[u8],
    deadline: Instant,
) -> std::io::Result<()> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        if ready(pipe.as_fd(), libc::POLLOUT, left)? {
            // Room for a page, which takes the whole of a write this small at once.
            return pipe.write_all(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quick_question_is_answered_or_given_up() {
        let echo = find("echo", None).unwrap();
        let said = output_within(&echo, &["--help me"], Duration::from_secs(10)).unwrap();
        assert_eq!(said, "--help me\n");
        let sleep = find("sleep", None).unwrap();
        let err = output_within(&sleep, &["30"], Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
    }

    #[test]
    fn finds_programs_or_names_the_package() {
        assert!(find("sh", Some("dash")).is_ok());
        let err = find("no-such-program-lantern", Some("lantern-pkg")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no-such-program-lantern not found: install it (Debian: apt-get install lantern-pkg)"
        );
        let err = find("no-such-game-lantern", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no-such-game-lantern not found: not on PATH: install it, or give its full path"
        );
        let err = find("/no/such/path", Some("x")).unwrap_err();
        assert_eq!(err.to_string(), "/no/such/path not found: no such file");
    }

    #[test]
    fn tails_keep_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        std::fs::write(&log, "one\n\ntwo\nthree\n").unwrap();
        let file = std::fs::File::open(&log).unwrap();
        // What was written, even once the name holds something else.
        std::fs::remove_file(&log).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", &log).unwrap();
        assert_eq!(tail(&file, 2), "two\nthree");
        let empty = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(tail(&empty, 2), "");
    }

    #[tokio::test]
    async fn a_stop_ends_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let env = [("PATH".to_string(), "/usr/bin:/bin".to_string())];
        // The shell starts a grandchild in the same group, then waits.
        let args = [
            "-c".to_string(),
            "sleep 60 & echo $! > pid; wait".to_string(),
        ];
        let mut child = Child::spawn(Spec {
            name: "shell",
            program: "sh",
            args: &args,
            env: &env,
            cwd: dir.path(),
            account: None,
            log: dir.path().join("log"),
            death_signal: libc::SIGKILL,
            stdin: None,
            stdout: None,
            cgroup: None,
        })
        .unwrap();
        let pid_file = dir.path().join("pid");
        for _ in 0..500 {
            if std::fs::read_to_string(&pid_file).is_ok_and(|s| s.ends_with('\n')) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let grandchild: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let status = child.stop(Duration::from_secs(5)).await;
        assert_eq!(status.signal(), Some(libc::SIGTERM));
        // The grandchild is gone (or a zombie of init's, which no longer runs). The signal is
        // delivered at once, but a loaded machine may take a moment to schedule its exit.
        let mut stat = String::new();
        for _ in 0..500 {
            stat = std::fs::read_to_string(format!("/proc/{grandchild}/stat")).unwrap_or_default();
            if stat.is_empty() || stat.contains(") Z ") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the grandchild outlived its group's stop: {stat}");
    }
}
