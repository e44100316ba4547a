//! Network: the host's loopback, other hosts, special socket families and
//! unix sockets outside the workspace.

use std::io::ErrorKind;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{must_block, must_block_where_possible};
use crate::args;
use crate::support::{Case, HostProcess, HostTmpDir, Verdict, is_root, unique};

/// Whether a connection is waiting on `listener` (accepting it).
fn tcp_reached(listener: &TcpListener) -> bool {
    listener.set_nonblocking(true).unwrap();
    match listener.accept() {
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(e) => panic!("accept: {e}"),
    }
}

fn udp_reached(socket: &UdpSocket, wait: Duration) -> bool {
    socket.set_read_timeout(Some(wait)).unwrap();
    socket.recv(&mut [0u8; 512]).is_ok()
}

fn tcp_to(addr: &str) -> Verdict {
    let listener = TcpListener::bind(addr).unwrap();
    let target = listener.local_addr().unwrap().to_string();
    Case::new().bare(&["tcp-connect", &target]).succeeded();
    assert!(tcp_reached(&listener), "bare, the connection should arrive");
    Case::new().sandboxed(&["tcp-connect", &target]).blocked();
    assert!(!tcp_reached(&listener), "a connection from the sandbox reached the host");
    Verdict::Passed
}

fn udp_to(addr: &str, payload: &str) -> Verdict {
    let socket = UdpSocket::bind(addr).unwrap();
    let target = socket.local_addr().unwrap().to_string();
    Case::new().bare(&["udp-send", &target, payload]).succeeded();
    assert!(udp_reached(&socket, Duration::from_secs(2)), "bare, the datagram should arrive");
    Case::new().sandboxed(&["udp-send", &target, payload]).blocked();
    assert!(!udp_reached(&socket, Duration::from_millis(300)), "a datagram from the sandbox reached the host");
    Verdict::Passed
}

pub fn tcp_to_the_hosts_loopback_is_denied() -> Verdict {
    tcp_to("127.0.0.1:0")
}

pub fn udp_to_the_hosts_loopback_is_denied() -> Verdict {
    udp_to("127.0.0.1:0", "hello")
}

/// Offline, a "DNS lookup" is a datagram to a resolver: the test plays one.
pub fn a_dns_query_to_a_local_resolver_is_denied() -> Verdict {
    udp_to("127.0.0.53:0", "query example.com IN A")
}

pub fn ipv6_to_the_hosts_loopback_is_denied() -> Verdict {
    if TcpListener::bind("[::1]:0").is_err() {
        return Verdict::Skipped("no IPv6 loopback on this machine".into());
    }
    tcp_to("[::1]:0");
    udp_to("[::1]:0", "hello")
}

pub fn raw_sockets_are_denied() -> Verdict {
    must_block_where_possible(Case::new, |_| args!["raw-socket"])
}

pub fn packet_sockets_are_denied() -> Verdict {
    must_block_where_possible(Case::new, |_| args!["packet-socket"])
}

pub fn vsock_is_denied() -> Verdict {
    must_block_where_possible(Case::new, |_| args!["vsock"])
}

pub fn netlink_sockets_are_denied() -> Verdict {
    must_block(Case::new, |_| args!["netlink"]);
    Verdict::Passed
}

pub fn a_unix_socket_outside_the_workspace_is_unreachable() -> Verdict {
    // In the fake host folder: invisible inside.
    let (bare, case) = (Case::new(), Case::new());
    unix_socket_is_unreachable(&bare, &bare.host.join("agent.sock"), &case, &case.host.join("agent.sock"));
    // In the real /tmp: shadowed by the private one inside.
    let dir = HostTmpDir::new();
    unix_socket_is_unreachable(&bare, &dir.path.join("bare.sock"), &case, &dir.path.join("sandboxed.sock"));
    Verdict::Passed
}

fn unix_socket_is_unreachable(bare: &Case, bare_path: &Path, case: &Case, path: &Path) {
    let bare_listener = UnixListener::bind(bare_path).unwrap();
    let listener = UnixListener::bind(path).unwrap();
    bare.bare(&["unix-connect", &bare_path.display().to_string()]).succeeded();
    assert!(unix_reached(&bare_listener), "bare, the connection should arrive");
    case.sandboxed(&["unix-connect", &path.display().to_string()]).blocked();
    assert!(!unix_reached(&listener), "a connection from the sandbox reached {}", path.display());
}

fn unix_reached(listener: &UnixListener) -> bool {
    listener.set_nonblocking(true).unwrap();
    match listener.accept() {
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(e) => panic!("accept: {e}"),
    }
}

pub fn an_abstract_unix_socket_is_unreachable() -> Verdict {
    use std::os::linux::net::SocketAddrExt;
    let name = unique("airlock-escape-abstract");
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
    let listener = UnixListener::bind_addr(&addr).unwrap();
    Case::new().bare(&["abstract-connect", &name]).succeeded();
    assert!(unix_reached(&listener), "bare, the connection should arrive");
    Case::new().sandboxed(&["abstract-connect", &name]).blocked();
    assert!(!unix_reached(&listener), "a connection from the sandbox reached the abstract socket");
    Verdict::Passed
}

/// A network namespace with a veth pair to this one; removed when dropped.
struct TestNetwork {
    name: String,
    host_if: String,
    peer_addr: String,
}

impl TestNetwork {
    fn create() -> Result<TestNetwork, String> {
        let id = std::process::id() % 250 + 1;
        let net = TestNetwork {
            name: unique("airlock-escape"),
            host_if: format!("ae{id}h"),
            peer_addr: format!("10.200.{id}.2"),
        };
        let peer_if = format!("ae{id}p");
        let ns = net.name.as_str();
        let host_addr = format!("10.200.{id}.1/30");
        let peer_cidr = format!("{}/30", net.peer_addr);
        let steps: &[&[&str]] = &[
            &["netns", "add", ns],
            &["link", "add", &net.host_if, "type", "veth", "peer", "name", &peer_if],
            &["link", "set", &peer_if, "netns", ns],
            &["addr", "add", &host_addr, "dev", &net.host_if],
            &["link", "set", &net.host_if, "up"],
            &["-n", ns, "addr", "add", &peer_cidr, "dev", &peer_if],
            &["-n", ns, "link", "set", &peer_if, "up"],
            &["-n", ns, "link", "set", "lo", "up"],
        ];
        for step in steps {
            let out = Command::new("ip").args(*step).output().map_err(|e| format!("ip: {e}"))?;
            if !out.status.success() {
                return Err(format!("ip {}: {}", step.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
            }
        }
        Ok(net)
    }

    /// `probe serve` inside the namespace; returns once it listens.
    fn serve(&self, port: u16) -> HostProcess {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name])
            .arg(std::env::current_exe().unwrap())
            .args(["probe", "serve", &format!("{}:{port}", self.peer_addr), "60"])
            .stdout(Stdio::piped());
        let mut server = HostProcess::spawn(cmd);
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(server.child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the server in the test network did not start");
        server
    }
}

impl Drop for TestNetwork {
    fn drop(&mut self) {
        // Deleting the namespace deletes the peer, and with it the pair.
        let _ = Command::new("ip").args(["netns", "delete", &self.name]).status();
        let _ = Command::new("ip").args(["link", "delete", &self.host_if]).stderr(Stdio::null()).status();
    }
}

pub fn a_host_on_another_network_is_unreachable() -> Verdict {
    if !is_root() {
        return Verdict::Skipped("needs root to create a network namespace and a veth pair".into());
    }
    let net = match TestNetwork::create() {
        Ok(net) => net,
        Err(e) => return Verdict::Skipped(format!("cannot build the test network: {e}")),
    };
    let _server = net.serve(8080);
    let target = format!("{}:8080", net.peer_addr);
    must_block(Case::new, |_| args!["tcp-connect", target]);
    must_block(Case::new, |_| args!["udp-send", target, "hello"]);
    Verdict::Passed
}

// --- host sockets under readable roots (issue 14, class 12) ------------------

/// Connects to a socket bound at `path` (in the folder `read`, given to the
/// sandbox with `--read`): bare the connection arrives, sandboxed it must not.
fn socket_in_a_readable_folder_is_unreachable(read: &Path, path: &Path, flags: &[&str]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let listener = UnixListener::bind(path).unwrap();
    let target = path.display().to_string();
    Case::new().bare(&["unix-connect", &target]).succeeded();
    assert!(unix_reached(&listener), "bare, the connection should arrive");
    let case = Case::new();
    let mut cmd = case.sandbox_command(flags);
    cmd.args(["./probe", "probe", "unix-connect", &target]);
    // Control: the folder itself is visible inside.
    let mut ls = case.sandbox_command(flags);
    ls.args(["./probe", "probe", "read", &read.join("visible.txt").display().to_string(), "visible"]);
    case.run(ls, format!("sandboxed: read {}/visible.txt", read.display())).succeeded();
    case.run(cmd, format!("sandboxed: unix-connect {target}")).blocked();
    assert!(!unix_reached(&listener), "a connection from the sandbox reached {target}");
}

pub fn a_host_socket_in_a_read_folder_is_unreachable() -> Verdict {
    let dir = HostTmpDir::new();
    std::fs::write(dir.path.join("visible.txt"), "visible\n").unwrap();
    let read = dir.path.display().to_string();
    socket_in_a_readable_folder_is_unreachable(&dir.path, &dir.path.join("deep/er/agent.sock"), &["--read", &read]);
    Verdict::Passed
}

/// A folder under /opt for one case, removed when dropped.
struct OptDir(std::path::PathBuf);

impl Drop for OptDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn a_host_socket_under_opt_is_unreachable() -> Verdict {
    let dir = OptDir(Path::new("/opt").join(unique("airlock-escape")));
    if std::fs::create_dir_all(&dir.0).is_err() {
        return Verdict::Skipped("/opt is not writable for this user, so no socket can be put there".into());
    }
    std::fs::write(dir.0.join("visible.txt"), "visible\n").unwrap();
    socket_in_a_readable_folder_is_unreachable(&dir.0, &dir.0.join("run/daemon.sock"), &[]);
    Verdict::Passed
}
