//! Host, port and address policy: pure functions, no I/O, so every decision is unit-tested.
//!
//! A target is accepted only in one spelling. Anything a resolver, URL parser or socket
//! library could read two ways (percent-escapes, IPv4 in octal or hex, short IPv4 forms,
//! trailing dots, zone ids) is refused with its own [`HostError`] instead of being normalized.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::EgressConfig;

/// The longest DNS name, in bytes, without its trailing dot.
const MAX_HOST_LEN: usize = 253;
/// The longest DNS label, in bytes.
const MAX_LABEL_LEN: usize = 63;
/// How many characters of an offending host an error message quotes.
const QUOTE_LEN: usize = 200;

/// A host that passed [`check_host`]: its one canonical spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidHost {
    /// Lowercase ASCII, without a trailing dot. An IPv6 literal is written in brackets
    /// (`[2001:db8::1]`), as in a URL authority.
    pub host: String,
    /// The address, when the host is an IP literal (only possible with `allow_ip_literals`).
    pub literal: Option<IpAddr>,
}

/// Why a host, port or address was refused. Each variant names what was wrong; the text goes
/// into the 403 body and the audit record, so quoted input is escaped and shortened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// The host is empty.
    #[error("host is empty")]
    Empty,
    /// The host is longer than a DNS name can be.
    #[error("host is {len} bytes long; a DNS name is at most 253")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The host ends in two or more dots (`github.com..`).
    #[error("host `{host}` ends in more than one dot")]
    TrailingDots {
        /// The host as given (escaped).
        host: String,
    },
    /// The host contains a control character (NUL, CR, LF, tab, DEL…).
    #[error("host `{host}` contains control character 0x{byte:02x}")]
    ControlChar {
        /// The host as given (escaped).
        host: String,
        /// The first control byte.
        byte: u8,
    },
    /// The host contains `%`: hosts are matched as written and never percent-decoded.
    #[error("host `{host}` contains a percent-escape; hosts are never decoded, write the name plainly")]
    PercentEscape {
        /// The host as given (escaped).
        host: String,
    },
    /// The host or authority contains `@` (`allowed.com@evil.com`).
    #[error("`{host}` contains `@`: userinfo is not accepted in a proxy target")]
    Userinfo {
        /// The host or authority as given (escaped).
        host: String,
    },
    /// The host contains non-ASCII characters.
    #[error("host `{host}` is not ASCII (hint: write an internationalized name in its `xn--` form)")]
    NonAscii {
        /// The host as given (escaped).
        host: String,
    },
    /// The host contains a character that is not a letter, digit, `-`, `_` or `.`.
    #[error("host `{host}` contains `{ch}`; a host name has only letters, digits, `-`, `_` and `.`")]
    InvalidChar {
        /// The host as given (escaped).
        host: String,
        /// The first offending character.
        ch: char,
    },
    /// The host has an empty label (`a..b`, `.a`).
    #[error("host `{host}` has an empty label")]
    EmptyLabel {
        /// The host (escaped).
        host: String,
    },
    /// A label is longer than 63 bytes.
    #[error("label `{label}` is {len} bytes long; a DNS label is at most 63")]
    LabelTooLong {
        /// The label (shortened).
        label: String,
        /// Its length in bytes.
        len: usize,
    },
    /// A label starts or ends with `-`.
    #[error("label `{label}` starts or ends with `-`")]
    HyphenEdge {
        /// The label.
        label: String,
    },
    /// The host is an IP literal and `allow_ip_literals` is off.
    #[error("host `{host}` is an IP literal, and IP literals are not allowed (hint: use the domain name)")]
    IpLiteral {
        /// The host as given (escaped).
        host: String,
    },
    /// The host is an IPv4 address in a legacy encoding (decimal integer, hex, octal, short
    /// form). Refused even with `allow_ip_literals`: only the dotted-quad spelling is accepted.
    #[error("host `{host}` is a non-canonical spelling of the IPv4 address {decoded}")]
    NonCanonicalIpv4 {
        /// The host as given (escaped).
        host: String,
        /// The address a lenient parser (`inet_aton`, browsers) reads it as.
        decoded: Ipv4Addr,
    },
    /// The last label is all digits (or `0x…`), which URL parsers read as an IPv4 address.
    #[error("host `{host}` ends in a numeric label, which parsers may read as an IPv4 address")]
    NumericFinalLabel {
        /// The host (escaped).
        host: String,
    },
    /// A bracketed IPv6 literal carries a zone id (`[fe80::1%25eth0]`).
    #[error("host `{host}` has an IPv6 zone id")]
    IpZoneId {
        /// The host as given (escaped).
        host: String,
    },
    /// A bracketed host is not a valid IPv6 address.
    #[error("host `{host}` is not a valid bracketed IPv6 address")]
    InvalidIpv6 {
        /// The host as given (escaped).
        host: String,
    },
    /// The host contains `:` outside brackets.
    #[error("host `{host}` contains `:`; an IPv6 address must be written in brackets")]
    UnbracketedIpv6 {
        /// The host as given (escaped).
        host: String,
    },
    /// A CONNECT target without a port.
    #[error("`{authority}` has no port; CONNECT needs host:port")]
    MissingPort {
        /// The authority as given (escaped).
        authority: String,
    },
    /// The port is not 1 to 65535 written as plain digits without a leading zero.
    #[error("port `{port}` is not a number from 1 to 65535 written in digits without a leading zero")]
    InvalidPort {
        /// The port as given (escaped).
        port: String,
    },
    /// The port is not in `allow_ports`.
    #[error("port {port} is not in the egress port allowlist")]
    PortNotAllowed {
        /// The port.
        port: u16,
    },
    /// The host is well formed but not in `allow_domains`.
    #[error("host `{host}` is not in the egress allowlist")]
    NotAllowed {
        /// The canonical host.
        host: String,
    },
    /// The address is in a range that is refused unless `allow_private` is set.
    #[error("address {addr} is in a forbidden range: {range} (hint: allow_private permits it)")]
    ForbiddenAddress {
        /// The address.
        addr: IpAddr,
        /// Which range, e.g. `loopback (127.0.0.0/8)`.
        range: String,
    },
}

/// Escapes control and non-ASCII characters and shortens to at most `max` characters, so
/// untrusted text can go into a log line, an audit record or an HTTP body.
pub(crate) fn sanitize(text: &str, max: usize) -> String {
    let pieces: Vec<String> = text
        .chars()
        .map(|ch| if ch.is_ascii_graphic() || ch == ' ' { ch.to_string() } else { ch.escape_default().to_string() })
        .collect();
    let total: usize = pieces.iter().map(|p| p.chars().count()).sum();
    if total <= max {
        return pieces.concat();
    }
    let mut out = String::new();
    let mut count = 0;
    for piece in pieces {
        let len = piece.chars().count();
        if count + len + 1 > max {
            break;
        }
        count += len;
        out.push_str(&piece);
    }
    out.push('…');
    out
}

fn quote(text: &str) -> String {
    sanitize(text, QUOTE_LEN)
}

/// Validates `host` (as it appears in a URL authority, IPv6 in brackets) and matches it
/// against `allow_domains`. Pure: no DNS.
///
/// Accepted bytes are ASCII letters, digits, `-`, `.` and `_`. Underscores are accepted
/// because real names use them (`_dmarc.example.com`, some CDN and bucket hosts), and no
/// resolver or URL parser gives `_` a meaning, so it cannot change which host matches.
/// Internationalized names are accepted only in their ASCII `xn--` form. One trailing dot is
/// removed (`github.com.` is `github.com`); two are refused.
///
/// `allow_domains` entries are `github.com` (that name only) or `*.github.com` (any name
/// below it, not `github.com` itself); an entry with `*` anywhere else matches nothing. An IP
/// literal, when `allow_ip_literals` is set, must still be listed in `allow_domains` (as
/// `203.0.113.7` or `[2001:db8::7]`): the flag lets addresses be named, it does not open every
/// address. A literal also goes through [`check_addr`].
pub fn check_host(host: &str, config: &EgressConfig) -> Result<ValidHost, HostError> {
    let valid = parse_host(host, config.allow_ip_literals)?;
    if !allowlisted(&valid, &config.allow_domains) {
        return Err(HostError::NotAllowed { host: quote(&valid.host) });
    }
    if let Some(addr) = valid.literal {
        check_addr(addr, config)?;
    }
    Ok(valid)
}

/// Splits an authority (`host:port`, `[v6]:port`) and checks host and port. `default_port` is
/// used when the authority has none; `None` makes the port required (CONNECT).
///
/// Ports are plain digits from 1 to 65535 with no sign and no leading zero (`0443` is refused:
/// one spelling per port).
pub(crate) fn check_authority(
    authority: &str,
    default_port: Option<u16>,
    config: &EgressConfig,
) -> Result<(ValidHost, u16), HostError> {
    if authority.contains('@') {
        return Err(HostError::Userinfo { host: quote(authority) });
    }
    let (host, port) = split_authority(authority)?;
    let valid = check_host(host, config)?;
    let port = match port {
        Some(port) => parse_port(port)?,
        None => default_port.ok_or_else(|| HostError::MissingPort { authority: quote(authority) })?,
    };
    if !config.allow_ports.contains(&port) {
        return Err(HostError::PortNotAllowed { port });
    }
    Ok((valid, port))
}

fn split_authority(authority: &str) -> Result<(&str, Option<&str>), HostError> {
    if authority.starts_with('[') {
        let Some(close) = authority.find(']') else {
            return Err(HostError::InvalidIpv6 { host: quote(authority) });
        };
        let (host, rest) = authority.split_at(close + 1);
        if rest.is_empty() {
            return Ok((host, None));
        }
        return match rest.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None => Err(HostError::InvalidIpv6 { host: quote(authority) }),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, _)) if host.contains(':') => Err(HostError::UnbracketedIpv6 { host: quote(authority) }),
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((authority, None)),
    }
}

fn parse_port(port: &str) -> Result<u16, HostError> {
    let invalid = || HostError::InvalidPort { port: quote(port) };
    let bytes = port.as_bytes();
    if bytes.is_empty() || bytes.len() > 5 || bytes[0] == b'0' || !bytes.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    port.parse::<u16>().map_err(|_| invalid())
}

/// Syntax only: the one accepted spelling of a host, or why it is refused.
fn parse_host(raw: &str, allow_literals: bool) -> Result<ValidHost, HostError> {
    if raw.is_empty() {
        return Err(HostError::Empty);
    }
    if let Some(rest) = raw.strip_prefix('[') {
        return parse_bracketed(raw, rest, allow_literals);
    }
    for &byte in raw.as_bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {}
            0..=0x1f | 0x7f => return Err(HostError::ControlChar { host: quote(raw), byte }),
            b'%' => return Err(HostError::PercentEscape { host: quote(raw) }),
            b'@' => return Err(HostError::Userinfo { host: quote(raw) }),
            b':' => return Err(HostError::UnbracketedIpv6 { host: quote(raw) }),
            0x80.. => return Err(HostError::NonAscii { host: quote(raw) }),
            other => return Err(HostError::InvalidChar { host: quote(raw), ch: char::from(other) }),
        }
    }
    let lower = raw.to_ascii_lowercase();
    let name = match lower.strip_suffix('.') {
        Some(stripped) if stripped.ends_with('.') => return Err(HostError::TrailingDots { host: quote(raw) }),
        Some(stripped) => stripped,
        None => lower.as_str(),
    };
    if name.is_empty() {
        return Err(HostError::Empty);
    }
    if name.len() > MAX_HOST_LEN {
        return Err(HostError::TooLong { len: name.len() });
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(HostError::EmptyLabel { host: quote(raw) });
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(HostError::LabelTooLong { label: sanitize(label, 40), len: label.len() });
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(HostError::HyphenEdge { label: label.to_owned() });
        }
    }
    // Rust's parser accepts exactly four decimal parts without leading zeros: the one spelling.
    if let Ok(v4) = name.parse::<Ipv4Addr>() {
        if !allow_literals {
            return Err(HostError::IpLiteral { host: quote(raw) });
        }
        return Ok(ValidHost { host: v4.to_string(), literal: Some(IpAddr::V4(v4)) });
    }
    if let Some(decoded) = parse_ipv4_lenient(name) {
        return Err(HostError::NonCanonicalIpv4 { host: quote(raw), decoded });
    }
    // The WHATWG URL parser treats a host whose last label is a number as IPv4 (and fails or
    // reinterprets it); resolvers may too. No real public name ends that way.
    if let Some(last) = name.rsplit('.').next()
        && is_numeric_label(last)
    {
        return Err(HostError::NumericFinalLabel { host: quote(raw) });
    }
    Ok(ValidHost { host: name.to_owned(), literal: None })
}

fn parse_bracketed(raw: &str, rest: &str, allow_literals: bool) -> Result<ValidHost, HostError> {
    let Some(inner) = rest.strip_suffix(']') else {
        return Err(HostError::InvalidIpv6 { host: quote(raw) });
    };
    if inner.contains('%') {
        return Err(HostError::IpZoneId { host: quote(raw) });
    }
    let Ok(v6) = inner.parse::<Ipv6Addr>() else {
        return Err(HostError::InvalidIpv6 { host: quote(raw) });
    };
    if !allow_literals {
        return Err(HostError::IpLiteral { host: quote(raw) });
    }
    Ok(ValidHost { host: format!("[{v6}]"), literal: Some(IpAddr::V6(v6)) })
}

fn is_numeric_label(label: &str) -> bool {
    if let Some(hex) = label.strip_prefix("0x") {
        return hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit())
}

/// Reads `host` the way `inet_aton` and the WHATWG URL parser do: one to four parts, each
/// decimal, octal (leading `0`) or hex (`0x`), the last part filling the remaining bytes.
/// Used only to refuse such spellings, naming the address they stand for.
fn parse_ipv4_lenient(host: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut numbers = Vec::with_capacity(parts.len());
    for part in &parts {
        numbers.push(parse_ipv4_part(part)?);
    }
    let (last, leading) = numbers.split_last()?;
    let mut value: u64 = 0;
    for (i, &n) in leading.iter().enumerate() {
        if n > 255 {
            return None;
        }
        value |= n << (8 * (3 - i));
    }
    let last_bits = 8 * (4 - leading.len());
    if *last >= 1u64 << last_bits {
        return None;
    }
    value |= last;
    u32::try_from(value).ok().map(Ipv4Addr::from)
}

fn parse_ipv4_part(part: &str) -> Option<u64> {
    let (digits, radix) = if let Some(hex) = part.strip_prefix("0x") {
        (hex, 16)
    } else if part.len() > 1 && part.starts_with('0') {
        (&part[1..], 8)
    } else {
        (part, 10)
    };
    if digits.is_empty() {
        // `0x` alone is zero to the WHATWG parser; a bare empty part is not a number.
        return (radix == 16).then_some(0);
    }
    // Longer than any 32-bit value in any radix: not an address, and no overflow below.
    if digits.len() > 32 {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

fn allowlisted(host: &ValidHost, allow_domains: &[String]) -> bool {
    allow_domains.iter().any(|entry| {
        let entry = entry.trim().to_ascii_lowercase();
        let entry = entry.strip_suffix('.').unwrap_or(&entry);
        if let Some(literal) = host.literal {
            let bare = entry.strip_prefix('[').and_then(|e| e.strip_suffix(']')).unwrap_or(entry);
            return bare.parse::<IpAddr>().is_ok_and(|listed| listed == literal);
        }
        if let Some(suffix) = entry.strip_prefix("*.") {
            return !suffix.is_empty()
                && !suffix.contains('*')
                && host.host.len() > suffix.len() + 1
                && host.host.ends_with(suffix)
                && host.host.as_bytes()[host.host.len() - suffix.len() - 1] == b'.';
        }
        !entry.contains('*') && entry == host.host
    })
}

/// Refuses addresses in private, loopback, link-local and other non-public ranges unless
/// `allow_private` is set. Pure.
///
/// IPv6 forms that carry an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible
/// `::a.b.c.d`, IPv4-translated, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by the
/// IPv4 address inside them; Teredo and local-use NAT64 are refused whole, since where they
/// lead cannot be read from the address alone.
pub fn check_addr(addr: IpAddr, config: &EgressConfig) -> Result<(), HostError> {
    if config.allow_private {
        return Ok(());
    }
    match forbidden_range(addr) {
        Some(range) => Err(HostError::ForbiddenAddress { addr, range }),
        None => Ok(()),
    }
}

/// IPv4 ranges that are not the public internet: (network, prefix length, name).
const V4_FORBIDDEN: &[(Ipv4Addr, u8, &str)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8, "this network (0.0.0.0/8)"),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "private (10.0.0.0/8)"),
    (Ipv4Addr::new(100, 64, 0, 0), 10, "carrier-grade NAT (100.64.0.0/10)"),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback (127.0.0.0/8)"),
    (Ipv4Addr::new(169, 254, 0, 0), 16, "link-local (169.254.0.0/16, includes cloud metadata 169.254.169.254)"),
    (Ipv4Addr::new(172, 16, 0, 0), 12, "private (172.16.0.0/12)"),
    (Ipv4Addr::new(192, 0, 0, 0), 24, "IETF protocol assignments (192.0.0.0/24)"),
    (Ipv4Addr::new(192, 0, 2, 0), 24, "documentation (192.0.2.0/24)"),
    (Ipv4Addr::new(192, 88, 99, 0), 24, "6to4 relay anycast (192.88.99.0/24)"),
    (Ipv4Addr::new(192, 168, 0, 0), 16, "private (192.168.0.0/16)"),
    (Ipv4Addr::new(198, 18, 0, 0), 15, "benchmarking (198.18.0.0/15)"),
    (Ipv4Addr::new(198, 51, 100, 0), 24, "documentation (198.51.100.0/24)"),
    (Ipv4Addr::new(203, 0, 113, 0), 24, "documentation (203.0.113.0/24)"),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast (224.0.0.0/4)"),
    (Ipv4Addr::new(240, 0, 0, 0), 4, "reserved and broadcast (240.0.0.0/4)"),
];

/// IPv6 ranges refused outright: (network, prefix length, name).
const V6_FORBIDDEN: &[(Ipv6Addr, u8, &str)] = &[
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48, "local-use NAT64 (64:ff9b:1::/48)"),
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64, "discard-only (100::/64)"),
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32, "Teredo (2001::/32)"),
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32, "documentation (2001:db8::/32)"),
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20, "documentation (3fff::/20)"),
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, "unique local (fc00::/7)"),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local (fe80::/10)"),
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, "site-local (fec0::/10)"),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast (ff00::/8)"),
];

fn forbidden_range(addr: IpAddr) -> Option<String> {
    match addr {
        IpAddr::V4(v4) => v4_forbidden(v4).map(str::to_owned),
        IpAddr::V6(v6) => v6_forbidden(v6),
    }
}

fn v4_forbidden(addr: Ipv4Addr) -> Option<&'static str> {
    let bits = u32::from(addr);
    V4_FORBIDDEN.iter().find_map(|&(net, len, name)| {
        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        (bits & mask == u32::from(net)).then_some(name)
    })
}

fn v6_forbidden(addr: Ipv6Addr) -> Option<String> {
    if addr.is_unspecified() {
        return Some("unspecified (::)".to_owned());
    }
    if addr.is_loopback() {
        return Some("loopback (::1)".to_owned());
    }
    if let Some((form, v4)) = embedded_v4(addr) {
        return v4_forbidden(v4).map(|range| format!("{form} form of {v4}, {range}"));
    }
    let bits = u128::from(addr);
    V6_FORBIDDEN.iter().find_map(|&(net, len, name)| {
        let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
        (bits & mask == u128::from(net)).then(|| name.to_owned())
    })
}

/// The IPv4 address an IPv6 address carries, for the forms that route to it.
fn embedded_v4(addr: Ipv6Addr) -> Option<(&'static str, Ipv4Addr)> {
    let s = addr.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(("IPv4-mapped", low)),
        [0, 0, 0, 0, 0xffff, 0, _, _] => Some(("IPv4-translated", low)),
        [0, 0, 0, 0, 0, 0, _, _] => Some(("IPv4-compatible", low)),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(("NAT64", low)),
        [0x2002, hi, lo, ..] => Some(("6to4", Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(domains: &[&str]) -> EgressConfig {
        EgressConfig { allow_domains: domains.iter().map(|d| (*d).to_owned()).collect(), ..EgressConfig::default() }
    }

    fn err(host: &str, config: &EgressConfig) -> HostError {
        match check_host(host, config) {
            Ok(valid) => panic!("{host:?} was accepted as {valid:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn hostile_hosts_are_refused_each_with_its_reason() {
        let c = config(&["github.com", "*.github.com", "api.example.test"]);
        let literal = |h: &str| HostError::IpLiteral { host: h.to_owned() };
        let noncanon = |h: &str, d: [u8; 4]| HostError::NonCanonicalIpv4 { host: h.to_owned(), decoded: d.into() };
        let cases: Vec<(&str, HostError)> = vec![
            ("", HostError::Empty),
            (".", HostError::Empty),
            ("github.com..", HostError::TrailingDots { host: "github.com..".into() }),
            ("a..github.com", HostError::EmptyLabel { host: "a..github.com".into() }),
            (".github.com", HostError::EmptyLabel { host: ".github.com".into() }),
            ("github.com\0.evil.com", HostError::ControlChar { host: "github.com\\u{0}.evil.com".into(), byte: 0 }),
            ("github.com\r\nX: y", HostError::ControlChar { host: "github.com\\r\\nX: y".into(), byte: b'\r' }),
            ("github.com\n", HostError::ControlChar { host: "github.com\\n".into(), byte: b'\n' }),
            ("github.com\t", HostError::ControlChar { host: "github.com\\t".into(), byte: b'\t' }),
            ("github.com%00.evil.com", HostError::PercentEscape { host: "github.com%00.evil.com".into() }),
            ("github%2ecom", HostError::PercentEscape { host: "github%2ecom".into() }),
            ("github.com@evil.com", HostError::Userinfo { host: "github.com@evil.com".into() }),
            ("github.com\\@evil.com", HostError::InvalidChar { host: "github.com\\@evil.com".into(), ch: '\\' }),
            ("github.com evil.com", HostError::InvalidChar { host: "github.com evil.com".into(), ch: ' ' }),
            ("github.com/x", HostError::InvalidChar { host: "github.com/x".into(), ch: '/' }),
            ("gíthub.com", HostError::NonAscii { host: "g\\u{ed}thub.com".into() }),
            ("-github.com", HostError::HyphenEdge { label: "-github".into() }),
            ("github-.com", HostError::HyphenEdge { label: "github-".into() }),
            ("evilgithub.com", HostError::NotAllowed { host: "evilgithub.com".into() }),
            ("github.com.evil.com", HostError::NotAllowed { host: "github.com.evil.com".into() }),
            ("localhost", HostError::NotAllowed { host: "localhost".into() }),
            ("127.0.0.1", literal("127.0.0.1")),
            ("169.254.169.254", literal("169.254.169.254")),
            ("2130706433", noncanon("2130706433", [127, 0, 0, 1])),
            ("0x7f000001", noncanon("0x7f000001", [127, 0, 0, 1])),
            ("0X7F000001", noncanon("0X7F000001", [127, 0, 0, 1])),
            ("0x7f.0.0.1", noncanon("0x7f.0.0.1", [127, 0, 0, 1])),
            ("0177.0.0.1", noncanon("0177.0.0.1", [127, 0, 0, 1])),
            ("017700000001", noncanon("017700000001", [127, 0, 0, 1])),
            ("127.1", noncanon("127.1", [127, 0, 0, 1])),
            ("127.0.1", noncanon("127.0.1", [127, 0, 0, 1])),
            ("127.0.0.1.", literal("127.0.0.1.")),
            ("0", noncanon("0", [0, 0, 0, 0])),
            ("1.2.3.4.5", HostError::NumericFinalLabel { host: "1.2.3.4.5".into() }),
            ("github.com.123", HostError::NumericFinalLabel { host: "github.com.123".into() }),
            ("github.0x1g", HostError::NotAllowed { host: "github.0x1g".into() }),
            ("github.0xff", HostError::NumericFinalLabel { host: "github.0xff".into() }),
            ("999.1.1.1", HostError::NumericFinalLabel { host: "999.1.1.1".into() }),
            ("[::1]", literal("[::1]")),
            ("[::ffff:127.0.0.1]", literal("[::ffff:127.0.0.1]")),
            ("[0:0:0:0:0:ffff:7f00:1]", literal("[0:0:0:0:0:ffff:7f00:1]")),
            ("[fe80::1%25eth0]", HostError::IpZoneId { host: "[fe80::1%25eth0]".into() }),
            ("[fe80::1%eth0]", HostError::IpZoneId { host: "[fe80::1%eth0]".into() }),
            ("[github.com]", HostError::InvalidIpv6 { host: "[github.com]".into() }),
            ("[::1", HostError::InvalidIpv6 { host: "[::1".into() }),
            ("::1", HostError::UnbracketedIpv6 { host: "::1".into() }),
        ];
        for (host, expected) in cases {
            assert_eq!(err(host, &c), expected, "host {host:?}");
        }
        let long_label = format!("{}.github.com", "a".repeat(64));
        assert!(matches!(err(&long_label, &c), HostError::LabelTooLong { len: 64, .. }));
        let long_host = format!("{}.github.com", vec!["a".repeat(60); 5].join("."));
        assert!(matches!(err(&long_host, &c), HostError::TooLong { .. }));
    }

    #[test]
    fn allowed_hosts_are_normalized() {
        let c = config(&["github.com", "*.github.com", "xn--bcher-kva.example"]);
        for (host, canonical) in [
            ("github.com", "github.com"),
            ("GitHub.COM", "github.com"),
            ("github.com.", "github.com"),
            ("api.github.com", "api.github.com"),
            ("A.B.GitHub.com.", "a.b.github.com"),
            ("_dmarc.github.com", "_dmarc.github.com"),
            ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ] {
            assert_eq!(check_host(host, &c), Ok(ValidHost { host: canonical.into(), literal: None }), "{host}");
        }
    }

    #[test]
    fn wildcard_matches_subdomains_only() {
        let c = config(&["*.github.com"]);
        assert!(check_host("api.github.com", &c).is_ok());
        assert_eq!(check_host("github.com", &c), Err(HostError::NotAllowed { host: "github.com".into() }));
        assert_eq!(check_host("evilgithub.com", &c), Err(HostError::NotAllowed { host: "evilgithub.com".into() }));
        assert!(check_host("github.com", &config(&["*github.com"])).is_err());
        assert!(check_host("github.com", &config(&["*"])).is_err());
        assert!(check_host("a.github.com", &config(&["*."])).is_err());
        assert!(check_host("github.com", &config(&["GitHub.com."])).is_ok());
    }

    #[test]
    fn ip_literals_need_the_flag_a_listing_and_a_public_address() {
        let mut c = config(&["8.8.8.8", "[2606:4700::1111]", "127.0.0.1", "[::ffff:127.0.0.1]"]);
        c.allow_ip_literals = true;
        assert_eq!(check_host("8.8.8.8", &c).map(|v| v.literal), Ok(Some("8.8.8.8".parse().unwrap())));
        let v6 = check_host("[2606:4700:0::1111]", &c).unwrap();
        assert_eq!(v6.host, "[2606:4700::1111]");
        assert_eq!(check_host("1.1.1.1", &c), Err(HostError::NotAllowed { host: "1.1.1.1".into() }));
        assert!(matches!(check_host("127.0.0.1", &c), Err(HostError::ForbiddenAddress { .. })));
        assert!(matches!(check_host("[::ffff:127.0.0.1]", &c), Err(HostError::ForbiddenAddress { .. })));
        // Legacy spellings stay refused even with the flag.
        assert!(matches!(check_host("0x08080808", &c), Err(HostError::NonCanonicalIpv4 { .. })));
        assert!(matches!(check_host("008.8.8.8", &c), Err(HostError::NumericFinalLabel { .. })));
    }

    #[test]
    fn authority_and_port_parsing_is_strict() {
        let c = config(&["github.com"]);
        assert_eq!(check_authority("github.com:443", None, &c).map(|(_, p)| p), Ok(443));
        assert_eq!(check_authority("github.com", Some(80), &c).map(|(_, p)| p), Ok(80));
        assert_eq!(
            check_authority("github.com", None, &c).map(|(_, p)| p),
            Err(HostError::MissingPort { authority: "github.com".into() })
        );
        for port in ["", "+443", "0443", "0", "65536", "4 43", "44a", "-1", "999999"] {
            assert_eq!(
                check_authority(&format!("github.com:{port}"), None, &c),
                Err(HostError::InvalidPort { port: port.into() }),
                "{port:?}"
            );
        }
        assert_eq!(check_authority("github.com:22", None, &c), Err(HostError::PortNotAllowed { port: 22 }));
        assert_eq!(
            check_authority("github.com:443@evil.com:443", None, &c),
            Err(HostError::Userinfo { host: "github.com:443@evil.com:443".into() })
        );
        assert_eq!(check_authority("::1:443", None, &c), Err(HostError::UnbracketedIpv6 { host: "::1:443".into() }));
        assert_eq!(check_authority("[::1]:443", None, &c), Err(HostError::IpLiteral { host: "[::1]".into() }));
        assert_eq!(check_authority("[::1]x", None, &c), Err(HostError::InvalidIpv6 { host: "[::1]x".into() }));
    }

    #[test]
    fn every_private_range_is_refused_including_embedded_forms() {
        let c = EgressConfig::default();
        let forbidden = [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.255.255",
            "169.254.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.1",
            "203.0.113.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:7f00:1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::ffff:0:192.168.0.1",
            "::127.0.0.1",
            "::10.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
            "2001::1",
            "2001:db8::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "100::1",
        ];
        for addr in forbidden {
            let ip: IpAddr = addr.parse().unwrap();
            assert!(
                matches!(check_addr(ip, &c), Err(HostError::ForbiddenAddress { addr, .. }) if addr == ip),
                "{addr} should be forbidden"
            );
            let open = EgressConfig { allow_private: true, ..EgressConfig::default() };
            assert_eq!(check_addr(ip, &open), Ok(()), "{addr} with allow_private");
        }
        let public =
            ["8.8.8.8", "1.1.1.1", "100.63.255.255", "100.128.0.0", "172.15.255.255", "172.32.0.0", "192.167.1.1"];
        let public_v6 = ["2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1", "2a00:1450::1"];
        for addr in public.iter().chain(public_v6.iter()) {
            assert_eq!(check_addr(addr.parse().unwrap(), &c), Ok(()), "{addr} should be allowed");
        }
    }

    #[test]
    fn forbidden_address_message_names_the_range() {
        let e = check_addr("::ffff:169.254.169.254".parse().unwrap(), &EgressConfig::default()).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("IPv4-mapped") && text.contains("cloud metadata"), "{text}");
    }

    #[test]
    fn sanitize_escapes_and_shortens() {
        assert_eq!(sanitize("a\r\nb\0", 200), "a\\r\\nb\\u{0}");
        let long = sanitize(&"x".repeat(500), 200);
        assert_eq!(long.chars().count(), 200);
        assert!(long.ends_with('…'));
    }
}
