//! A private PostgreSQL cluster for tests: `initdb` into a temporary
//! folder, a server listening on a Unix socket in that folder only
//! (`listen_addresses=''`), trust authentication for one superuser, and
//! `pg_ctl stop -m immediate` when dropped. Never the system's service.
//!
//! initdb and postgres refuse to run as root: as root, the folder is
//! given to the unprivileged user `airlock-test` (created if missing) and
//! the server runs as that user through `runuser`. Clients connect as the
//! cluster's superuser `airlock` whatever user they run as.
//!
//! ```no_run
//! let Some(cluster) = airlock_test_support::postgres::Cluster::start() else { return };
//! let url = cluster.create_database("one_test");
//! // connect to `url` with any client; the cluster stops when dropped
//! ```

// Test support: a cluster that cannot start is a failed test, said loudly.
#![allow(clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The unprivileged user the server runs as when the tests run as root.
pub const RUN_AS: &str = "airlock-test";

/// The cluster's superuser, whom every client connects as.
pub const SUPERUSER: &str = "airlock";

/// The database every cluster starts with (the one [`Cluster::url`] names).
pub const DATABASE: &str = "airlock";

/// A running private cluster; stopped when dropped.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: Option<String>,
    running: bool,
    /// The port, when not the default (the socket's name carries it).
    port: u16,
}

/// The folder of the PostgreSQL server programs: `AIRLOCK_PG_BINDIR`, else
/// `pg_config --bindir` when it holds `initdb`, else the newest of
/// /usr/lib/postgresql/*/bin (Debian's server package).
pub fn bindir() -> Option<PathBuf> {
    let has = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("AIRLOCK_PG_BINDIR") {
        return Some(PathBuf::from(dir)).filter(|d| has(d));
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has(&dir) {
            return Some(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, dir)| has(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

impl Cluster {
    /// Starts a cluster with the server's default settings (durable
    /// commits), or `None` with a printed SKIP line when the server
    /// programs are missing. With `CI` set, anything missing is a failure.
    pub fn start() -> Option<Cluster> {
        Cluster::start_with(&[])
    }

    /// [`Cluster::start`] with extra server settings (`("fsync", "off")`).
    pub fn start_with(settings: &[(&str, &str)]) -> Option<Cluster> {
        Cluster::start_inner(settings, None)
    }

    /// A cluster that also listens on `127.0.0.1:port` with TLS only there
    /// (`hostssl`): its certificate, for `localhost` only (not `127.0.0.1`), is
    /// signed by a CA made for this cluster alone ([`Cluster::tls_ca`]).
    /// Needs the `openssl` program.
    pub fn start_tls(port: u16) -> Option<Cluster> {
        Cluster::start_inner(&[], Some(port))
    }

    /// The CA file that signed a TLS cluster's certificate.
    pub fn tls_ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A connection string over TCP and TLS to a [`Cluster::start_tls`]
    /// cluster, with `extra` query parameters (`sslmode=verify-full&sslrootcert=...`).
    pub fn tls_url(&self, port: u16, extra: &str) -> String {
        format!("postgresql://{SUPERUSER}@localhost:{port}/{DATABASE}?{extra}")
    }

    fn make_certificates(&self) {
        let dir = self.dir.path();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl").args(args).current_dir(dir).output().expect("running openssl");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        openssl(
            &[
                &["req", "-subj", "/CN=airlock-test-ca", "-x509"][..],
                &ec,
                &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"],
            ]
            .concat(),
        );
        openssl(
            &[&["req", "-subj", "/CN=localhost"][..], &ec, &["-keyout", "server.key", "-out", "server.csr"]].concat(),
        );
        std::fs::write(dir.join("server.ext"), "subjectAltName=DNS:localhost\n").expect("server.ext");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);
        let key = dir.join("server.key");
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod server.key");
        if let Some(user) = &self.run_as {
            let (uid, gid) = ensure_user(user);
            for file in ["server.key", "server.pem", "ca.pem"] {
                std::os::unix::fs::chown(dir.join(file), Some(uid), Some(gid)).expect("chown the certificates");
            }
        }
    }

    fn start_inner(settings: &[(&str, &str)], tls_port: Option<u16>) -> Option<Cluster> {
        let Some(bin) = bindir() else {
            let what = "PostgreSQL's server programs (initdb, pg_ctl) are not installed: \
                        apt-get install postgresql, or set AIRLOCK_PG_BINDIR";
            assert!(std::env::var_os("CI").is_none(), "{what}");
            println!("SKIP: {what}");
            return None;
        };
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let run_as = root.then(|| RUN_AS.to_string());
        let dir = tempfile::Builder::new().prefix("airlock-pg.").tempdir().expect("a temporary folder for PostgreSQL");
        if let Some(user) = &run_as {
            let (uid, gid) = ensure_user(user);
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("giving the folder to the server's user");
        }
        let mut cluster = Cluster { dir, bin, run_as, running: false, port: tls_port.unwrap_or(5432) };
        let data = cluster.data();
        cluster.run_ok(
            "initdb",
            &["-D", path_str(&data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"],
        );
        let mut options = format!("-k {} -c listen_addresses=''", path_str(cluster.dir.path()));
        if let Some(port) = tls_port {
            cluster.make_certificates();
            let dir = path_str(cluster.dir.path());
            options = format!(
                "-k {dir} -c listen_addresses=127.0.0.1 -c port={port} -c ssl=on \
                 -c ssl_cert_file={dir}/server.pem -c ssl_key_file={dir}/server.key"
            );
            // TCP only with TLS; the socket as before.
            let hba = data.join("pg_hba.conf");
            std::fs::write(&hba, "local all all trust\nhostssl all all 127.0.0.1/32 trust\n").expect("pg_hba.conf");
        }
        for (name, value) in settings {
            options.push_str(&format!(" -c {name}={value}"));
        }
        let log = cluster.dir.path().join("server.log");
        cluster.run_ok(
            "pg_ctl",
            &["start", "-w", "-t", "60", "-D", path_str(&data), "-l", path_str(&log), "-o", &options],
        );
        cluster.running = true;
        cluster.wait_ready();
        cluster.psql("postgres", &format!("CREATE DATABASE {DATABASE}"));
        Some(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The folder of the server's socket.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// A connection string for the database `airlock`.
    pub fn url(&self) -> String {
        self.url_for(DATABASE)
    }

    /// A connection string for the database `name` (Unix socket, the
    /// superuser, no password: trust authentication).
    pub fn url_for(&self, name: &str) -> String {
        format!("postgresql:///{name}?host={}&port={}&user={SUPERUSER}", path_str(self.socket_dir()), self.port)
    }

    /// Creates an empty database `name` (letters, digits and `_`) and
    /// returns its connection string: one per test keeps tests apart.
    pub fn create_database(&self, name: &str) -> String {
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "database name {name:?}: letters, digits and _ only"
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url_for(name)
    }

    /// Runs SQL in database `db` with psql (stopping at the first error)
    /// and returns what it printed (unaligned, tuples only).
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.socket_dir())
            .args(["-p", &self.port.to_string()])
            .args(["-U", SUPERUSER, "-d", db, "-c", sql])
            .output()
            .expect("running psql");
        assert!(out.status.success(), "psql {sql:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The server's log so far (for a failing test's message).
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`); a second call does nothing.
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        let data = self.data();
        let out = self.run("pg_ctl", &["stop", "-m", "immediate", "-w", "-D", path_str(&data)]);
        if !out.status.success() {
            println!("pg_ctl stop: {}", String::from_utf8_lossy(&out.stderr));
        }
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .arg("-h")
                .arg(self.socket_dir())
                .args(["-p", &self.port.to_string()])
                .args(["-U", SUPERUSER, "-d", "postgres", "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "PostgreSQL did not start: {}", self.server_log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs a server program, as the unprivileged user when we are root.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let program = self.bin.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        // A folder the server's user may enter (runuser keeps the working folder).
        cmd.args(args).current_dir(self.dir.path());
        cmd.output().unwrap_or_else(|e| panic!("running {}: {e}", program.display()))
    }

    fn run_ok(&self, program: &str, args: &[&str]) {
        let out = self.run(program, args);
        assert!(
            out.status.success(),
            "{program} failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.server_log()
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// The uid and gid of `user`, creating it if missing: an ordinary user with a
/// home and a shell, as every other script that may create it first makes it
/// (scripts/test runs the sandbox suites as this user with that home, and
/// tests/wrap drives agents in tmux, which starts the user's shell).
fn ensure_user(user: &str) -> (u32, u32) {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, user]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    if id("-u").is_none() {
        println!("creating the user {user} to run PostgreSQL (it refuses to run as root)");
        let status = Command::new("useradd")
            .args(["--create-home", "--shell", "/bin/sh", user])
            .status()
            .expect("running useradd");
        assert!(status.success(), "useradd {user} failed");
    }
    (id("-u").expect("the user's uid"), id("-g").expect("the user's gid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_starts_takes_queries_and_stops() {
        let Some(mut cluster) = Cluster::start() else { return };
        assert_eq!(cluster.psql(DATABASE, "SELECT 40 + 2"), "42");
        let url = cluster.create_database("second");
        assert!(url.starts_with("postgresql:///second?host=/"), "{url}");
        assert_eq!(cluster.psql("second", "SELECT current_database()"), "second");
        let socket = cluster.socket_dir().join(".s.PGSQL.5432");
        assert!(socket.exists(), "no socket at {}", socket.display());
        cluster.stop();
        assert!(!socket.exists(), "the socket outlived the server");
    }
}
