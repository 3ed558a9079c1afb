//! Who a session's compositor and app run as, and the private runtime directory they share.
//!
//! wlroots refuses to run as root, and an app has no business running as root either: a daemon
//! started as root runs each session as an unprivileged account (`--user`, by default
//! [`DEFAULT_USER`]); a daemon started as anyone else runs sessions as itself.

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};

use crate::Error;

/// The account sessions run as when the daemon is root and no `--user` is given.
pub const DEFAULT_USER: &str = "lantern";

/// The daemon's effective user id.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

pub fn is_root() -> bool {
    effective_uid() == 0
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl Account {
    /// Look an account up by name.
    pub fn lookup(name: &str) -> Result<Self, Error> {
        let missing = || {
            Error::Config(format!(
                "no user {name:?} on this host: create it (e.g. `useradd --system --user-group \
                 --no-create-home --shell /usr/sbin/nologin {name}`) or choose one with --user"
            ))
        };
        let c_name = CString::new(name).map_err(|_| missing())?;
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut buf = vec![0 as libc::c_char; 16 * 1024];
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: getpwnam_r writes only into pwd and buf, whose sizes we pass.
        let rc = unsafe {
            libc::getpwnam_r(
                c_name.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            )
        };
        if rc != 0 || found.is_null() {
            return Err(missing());
        }
        // SAFETY: on success pw_name points into buf, NUL-terminated.
        let name = unsafe { CStr::from_ptr(pwd.pw_name) }
            .to_string_lossy()
            .into_owned();
        Ok(Self {
            name,
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
        })
    }

    /// The account a session runs as: `requested`, or the default when the daemon is root;
    /// `None` when the daemon is not root (sessions run as the daemon's own user).
    pub fn for_session(requested: Option<&str>) -> Result<Option<Self>, Error> {
        if !is_root() {
            return match requested {
                None => Ok(None),
                Some(name) => {
                    let account = Self::lookup(name)?;
                    if account.uid == effective_uid() {
                        Ok(None)
                    } else {
                        Err(Error::Config(format!(
                            "--user {name}: only a daemon running as root can start sessions \
                             as another user"
                        )))
                    }
                }
            };
        }
        let name = requested.unwrap_or(DEFAULT_USER);
        let account = Self::lookup(name)?;
        if account.uid == 0 {
            return Err(Error::Config(format!(
                "--user {name} is root: compositors and apps never run as root; choose an \
                 unprivileged user"
            )));
        }
        Ok(Some(account))
    }

    /// Kill every process of this account, wherever it went: a process running as the
    /// account that sends SIGKILL to every process it may signal (`kill(-1)`) reaches exactly
    /// the account's processes. For an account that is one session's alone, once the session
    /// is over (root only).
    pub fn kill_all(&self) -> Result<(), Error> {
        use std::os::unix::process::CommandExt;
        use std::process::Stdio;
        let mut command = std::process::Command::new("/bin/true");
        command
            .uid(self.uid)
            .gid(self.gid)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls (kill, _exit) between fork and exec, after std's
        // setuid. A few rounds catch what forked while the first was delivered; no process left
        // to signal (ESRCH) ends them. It never execs.
        unsafe {
            command.pre_exec(|| {
                for _ in 0..8 {
                    if libc::kill(-1, libc::SIGKILL) != 0 {
                        break;
                    }
                }
                libc::_exit(0)
            });
        }
        let status = command
            .status()
            .map_err(|e| Error::io(format!("killing what is left of user {}", self.name), e))?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::io(
                format!("killing what is left of user {}", self.name),
                std::io::Error::other(format!("the killer ended with {status}")),
            ))
        }
    }

    pub fn chown(&self, path: &Path) -> Result<(), Error> {
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
            .map_err(|e| Error::io(format!("chown {} to {}", path.display(), self.name), e))
    }
}

/// Where root daemons mark the accounts their sessions hold: root's alone.
const CLAIMS: &str = "/run/lantern/accounts";

/// An account held by one session host-wide, for as long as this lives: a lock on a file
/// named after it, so no two daemons on a host give one account to two sessions (the kernel
/// lets it go if the daemon dies).
pub struct Claim {
    _lock: std::fs::File,
}

impl Claim {
    /// Hold account `name`; `None` when a session (of any daemon) holds it.
    pub fn take(name: &str) -> Result<Option<Self>, Error> {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        if name.is_empty() || name.contains('/') {
            return Err(Error::Config(format!("{name:?} is no account name")));
        }
        let io = |e| Error::io(format!("claiming user {name} in {CLAIMS}"), e);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(CLAIMS)
            .map_err(io)?;
        // Root's alone, or another user could take or hold the claims.
        let dir = std::fs::symlink_metadata(CLAIMS).map_err(io)?;
        {
            use std::os::unix::fs::MetadataExt;
            if !dir.is_dir() || dir.uid() != 0 || dir.mode() & 0o022 != 0 {
                return Err(Error::Config(format!(
                    "{CLAIMS} must be a directory root owns and only root may write"
                )));
            }
        }
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(Path::new(CLAIMS).join(format!("{name}.lock")))
            .map_err(io)?;
        // SAFETY: a plain syscall on a descriptor we own.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = std::io::Error::last_os_error();
            return match err.kind() {
                std::io::ErrorKind::WouldBlock => Ok(None),
                _ => Err(io(err)),
            };
        }
        Ok(Some(Self { _lock: lock }))
    }
}

/// The session's private XDG_RUNTIME_DIR (mode 0700, owned by the session's account), where
/// the compositor's and PipeWire's sockets live. Removed when dropped.
pub struct RuntimeDir {
    /// The session's cgroup, when the daemon can make one: killed (everything the session
    /// started) before the directory goes.
    cgroup: Option<crate::cgroup::Cgroup>,
    dir: tempfile::TempDir,
}

impl RuntimeDir {
    pub fn create(name: &str, account: Option<&Account>) -> Result<Self, Error> {
        use std::os::unix::fs::PermissionsExt;
        // Under the daemon's own runtime dir when it has one and keeps the session's user;
        // /tmp otherwise (a root daemon's /run/user/0 is not the session user's to enter).
        let base = match (account, std::env::var_os("XDG_RUNTIME_DIR")) {
            (None, Some(dir)) if Path::new(&dir).is_dir() => PathBuf::from(dir),
            _ => std::env::temp_dir(),
        };
        let dir = tempfile::Builder::new()
            .prefix(&format!("lantern-{name}-"))
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(&base)
            .map_err(|e| Error::io(format!("creating a runtime dir in {}", base.display()), e))?;
        if let Some(account) = account {
            account.chown(dir.path())?;
        }
        Ok(Self {
            cgroup: crate::cgroup::Cgroup::create(name),
            dir,
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The cgroup the session's processes run in, if it has one.
    pub fn cgroup(&self) -> Option<&crate::cgroup::Cgroup> {
        self.cgroup.as_ref()
    }

    /// A file the session's account owns in it, with `text` (made as [`crate::files`]
    /// makes files: the account may already have put anything at that name).
    pub fn write(
        &self,
        name: &str,
        text: &str,
        account: Option<&Account>,
    ) -> Result<PathBuf, Error> {
        crate::files::write(self.path(), Path::new(name), text, account)?;
        Ok(self.path().join(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_users_say_how_to_make_one() {
        let err = Account::lookup("no-such-user-lantern")
            .unwrap_err()
            .to_string();
        assert!(err.contains("useradd"), "{err}");
        assert_eq!(Account::lookup("root").unwrap().uid, 0);
    }

    #[test]
    fn runtime_dirs_are_private_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = RuntimeDir::create("test", None).unwrap();
        let path = dir.path().to_path_buf();
        let mode = path.metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        dir.write("a/b.conf", "x", None).unwrap();
        assert_eq!(std::fs::read_to_string(path.join("a/b.conf")).unwrap(), "x");
        drop(dir);
        assert!(!path.exists());
    }
}
