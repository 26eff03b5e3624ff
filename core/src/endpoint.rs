//! Which hosts the browser layer lets an endpoint use over plain `http:`.
//!
//! Browsers treat loopback origins as potentially trustworthy (so `Secure` cookies work on
//! them), which is why `http://localhost:8080` is allowed for development. The check must
//! match loopback addresses exactly: a prefix test would let `http://127.evil.example`
//! through, a DNS name an attacker controls.

/// True for a loopback host as the URL parser serializes it (`URL.hostname`): `localhost`,
/// `[::1]`, or a dotted-decimal `127.x.y.z` (four octets of at most three digits, each 0-255).
///
/// The WHATWG URL parser already rewrites every IPv4 spelling (`127.1`, `0x7f.1`,
/// `2130706433`) into four decimal octets, so anything else that starts with `127.` is a
/// domain name and is refused.
pub fn loopback_host(host: &str) -> bool {
    if host == "localhost" || host == "[::1]" {
        return true;
    }
    let Some(rest) = host.strip_prefix("127.") else {
        return false;
    };
    // One pass over the last three octets (a split and parse would cost the package 1.4 KB).
    let (mut octet, mut digits, mut value) = (2u8, 0u8, 0u16);
    for b in rest.bytes() {
        match b {
            b'0'..=b'9' if digits < 3 => {
                value = value * 10 + u16::from(b - b'0');
                digits += 1;
            }
            b'.' if digits > 0 && value <= 255 && octet < 4 => {
                octet += 1;
                digits = 0;
                value = 0;
            }
            _ => return false,
        }
    }
    octet == 4 && digits > 0 && value <= 255
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_exactly_localhost_ipv6_one_and_127_slash_8() {
        for host in [
            "localhost",
            "[::1]",
            "127.0.0.1",
            "127.1.2.3",
            "127.255.255.255",
        ] {
            assert!(loopback_host(host), "{host}");
        }
        for host in [
            "127.evil.example",
            "127.0.0.1.evil.example",
            "127.0.0.evil",
            "127.0.0.256",
            "127.0.0",
            "127.0.0.1.2",
            "127..0.1",
            "127.0.0.",
            "127.0.0.0001",
            "127.0.0.+1",
            "128.0.0.1",
            "1127.0.0.1",
            "localhost.evil.example",
            "evil.localhost",
            "localhost.",
            "[::2]",
            "[::ffff:7f00:1]",
            "",
        ] {
            assert!(!loopback_host(host), "{host}");
        }
    }
}
