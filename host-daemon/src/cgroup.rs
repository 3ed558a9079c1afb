//! A cgroup (v2) of its own for each session, so that nothing a session started outlives it:
//! what leaves the app's process group (`setsid`, a double fork) stays in the session's
//! cgroup, and the session's end kills the cgroup whole (`cgroup.kill`).
//!
//! The groups are made under the daemon's own cgroup (systemd gives the service one to
//! manage with `Delegate=yes`), named `lantern-PID-SESSION-N` after the daemon's pid, so a
//! daemon that starts again sweeps what a killed predecessor left ([`sweep`]) without
//! touching another live daemon's. Where no cgroup v2 is mounted or the daemon may not write
//! its own (an unprivileged daemon without delegation), sessions run without one: the
//! process group and, for a session's own account, `kill(-1)` as that user still apply.
//!
//! Children enter their group between fork and exec, through a descriptor of the group's
//! `cgroup.procs` opened by the daemon (the kernel checks the opener's rights): a child is in
//! the group before it can fork anything.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a killed group may take to empty before its directory is left behind.
const EMPTY_WAIT: Duration = Duration::from_secs(2);
const PREFIX: &str = "lantern-";

/// One session's cgroup; killed and removed when dropped.
#[derive(Debug)]
pub struct Cgroup {
    path: PathBuf,
    /// Its `cgroup.procs`, open for writing: a child writes "0" to it to enter.
    procs: File,
}

impl Cgroup {
    /// A new group for the session `label`; `None` where this daemon cannot make one (said
    /// once, at info level).
    pub fn create(label: &str) -> Option<Self> {
        static MADE: AtomicU32 = AtomicU32::new(0);
        let base = match own() {
            Ok(base) => base,
            Err(why) => {
                static SAID: std::sync::Once = std::sync::Once::new();
                SAID.call_once(|| {
                    tracing::info!(
                        "sessions run without a cgroup of their own ({why}): what leaves a \
                         session's process group is stopped through its account only"
                    );
                });
                return None;
            }
        };
        let label: String = label
            .chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' => c,
                _ => '_',
            })
            .take(40)
            .collect();
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let path = base.join(format!("{PREFIX}{}-{label}-{n}", std::process::id()));
        let made = std::fs::create_dir(&path).and_then(|()| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(path.join("cgroup.procs"))
        });
        // A process must be able to enter it (a host may refuse moves across its hierarchy):
        // a session whose children could not start would be worse than one without a group.
        let made = made.and_then(|procs| probe(procs.as_raw_fd()).map(|()| procs));
        match made {
            Ok(procs) => Some(Self { path, procs }),
            Err(err) => {
                tracing::info!(path = %path.display(), %err, "no cgroup for a session");
                let _ = std::fs::remove_dir(&path);
                None
            }
        }
    }

    /// The descriptor a child writes "0" to, to enter the group (see [`enter`]).
    pub fn procs_fd(&self) -> RawFd {
        self.procs.as_raw_fd()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        kill(&self.path);
        remove(&self.path);
    }
}

/// Enter the group whose `cgroup.procs` is `procs_fd`: for a child between fork and exec
/// (one `write`, async-signal-safe).
pub fn enter(procs_fd: RawFd) -> std::io::Result<()> {
    // SAFETY: a write of a static byte to a descriptor the daemon holds open.
    if unsafe { libc::write(procs_fd, b"0".as_ptr().cast(), 1) } == 1 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Start `/bin/true` in the group whose `cgroup.procs` is `procs_fd`, as a child will enter it.
fn probe(procs_fd: RawFd) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new("/bin/true");
    command
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: enter() is one write between fork and exec.
    unsafe {
        command.pre_exec(move || enter(procs_fd));
    }
    command.status().map(drop)
}

/// Kill and remove the groups a daemon that is no longer running left behind (it was
/// killed before it could), under this daemon's own cgroup.
pub fn sweep() {
    let Ok(base) = own() else { return };
    let Ok(entries) = std::fs::read_dir(&base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: a signal-0 probe of a pid.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH);
        if !alive {
            tracing::info!(group = ?name, "removing a session cgroup a stopped daemon left");
            kill(&entry.path());
            remove(&entry.path());
        }
    }
}

/// This process's cgroup v2 directory, if there is one it may make groups in.
fn own() -> Result<PathBuf, String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("/proc/self/mountinfo: {e}"))?;
    let mount = mountinfo
        .lines()
        .find_map(|line| {
            let (fields, fs) = line.split_once(" - ")?;
            (fs.split(' ').next() == Some("cgroup2")).then(|| fields.split(' ').nth(4))?
        })
        .ok_or("no cgroup v2 file system is mounted")?;
    let cgroup = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("/proc/self/cgroup: {e}"))?;
    let own = cgroup
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .ok_or("this process has no cgroup v2 path")?;
    let dir = Path::new(mount).join(own.trim_start_matches('/'));
    let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| "a cgroup path with a NUL".to_string())?;
    // SAFETY: access() on a NUL-terminated path.
    if unsafe { libc::access(path.as_ptr(), libc::W_OK) } != 0 {
        return Err(format!("{} is not writable", dir.display()));
    }
    Ok(dir)
}

/// Kill everything in the group at `path`: `cgroup.kill` where the kernel has it (5.14),
/// else each process it lists, a few rounds (what forks meanwhile is listed next round).
fn kill(path: &Path) {
    if std::fs::OpenOptions::new()
        .write(true)
        .open(path.join("cgroup.kill"))
        .and_then(|mut f| f.write_all(b"1"))
        .is_ok()
    {
        return;
    }
    for _ in 0..8 {
        let Ok(procs) = std::fs::read_to_string(path.join("cgroup.procs")) else {
            return;
        };
        let pids: Vec<i32> = procs.lines().filter_map(|l| l.parse().ok()).collect();
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            // SAFETY: a plain syscall on a pid the group lists.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Remove the (killed) group at `path` once it is empty, waiting up to [`EMPTY_WAIT`].
fn remove(path: &Path) {
    let deadline = Instant::now() + EMPTY_WAIT;
    loop {
        let populated = std::fs::read_to_string(path.join("cgroup.events"))
            .map(|events| events.lines().any(|l| l == "populated 1"))
            .unwrap_or(false);
        if !populated || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // Another daemon's sweep may have taken it first.
    if let Err(err) = std::fs::remove_dir(path)
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), %err, "a session's cgroup could not be removed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the tests may make groups (root, or a delegated cgroup); else they say so.
    fn group(label: &str) -> Option<Cgroup> {
        let made = Cgroup::create(label);
        if made.is_none() {
            eprintln!("skipped: no writable cgroup v2 here ({:?})", own().err());
        }
        made
    }

    #[test]
    fn what_a_session_forked_away_dies_with_its_group_and_the_group_goes() {
        let Some(group) = group("test/../x y") else {
            return;
        };
        let name = group
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(name.starts_with(&format!("lantern-{}-test____x_y-", std::process::id())));
        // A shell that enters the group, then leaves a process that escaped its group.
        let fd = group.procs_fd();
        let mut command = std::process::Command::new("sh");
        command.args(["-c", "setsid sleep 600 >/dev/null 2>&1 & echo $!"]);
        // SAFETY: enter() is one write.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(move || enter(fd));
        }
        let out = command.output().unwrap();
        let escaped: i32 = String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let alive = |pid: i32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
        };
        assert!(alive(escaped));
        let path = group.path().to_path_buf();
        let procs = std::fs::read_to_string(path.join("cgroup.procs")).unwrap();
        assert!(procs.lines().any(|l| l == escaped.to_string()), "{procs}");
        drop(group);
        // Killed (a zombie until its parent, init, reaps it) and the group removed.
        for _ in 0..200 {
            if !alive(escaped) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!alive(escaped), "{escaped} outlived its group");
        assert!(!path.exists());
    }

    #[test]
    fn a_dead_daemons_groups_are_swept_and_a_live_ones_are_not() {
        let Some(live) = group("live") else { return };
        let base = own().unwrap();
        // A pid that is not running: past the kernel's largest.
        let dead = base.join(format!("{PREFIX}4194305-old-0"));
        std::fs::create_dir(&dead).unwrap();
        sweep();
        assert!(!dead.exists());
        assert!(live.path().exists());
    }
}
