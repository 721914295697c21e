#![allow(clippy::unwrap_used)]

use super::*;
use alloc::string::String;
use core::net::{Ipv4Addr, Ipv6Addr};

fn class(s: &str) -> IpClass {
    classify(s.parse().unwrap())
}

/// Checks every row of a table: `f(input)` must equal `expected(row's value)`.
fn check_table<T, R: PartialEq + core::fmt::Debug>(
    table: impl IntoIterator<Item = (&'static str, T)>,
    f: impl Fn(&str) -> R,
    expected: impl Fn(T) -> R,
) {
    for (input, value) in table {
        assert_eq!(f(input), expected(value), "{input}");
    }
}

#[test]
fn ipv4_ranges_are_classified() {
    check_table(
        [
            ("8.8.8.8", IpClass::Public),
            ("1.1.1.1", IpClass::Public),
            ("0.0.0.0", IpClass::Unspecified),
            ("0.1.2.3", IpClass::Unspecified),
            ("127.0.0.1", IpClass::Loopback),
            ("127.255.0.9", IpClass::Loopback),
            ("10.1.2.3", IpClass::Private),
            ("172.16.0.1", IpClass::Private),
            ("172.31.255.255", IpClass::Private),
            ("172.32.0.1", IpClass::Public),
            ("172.15.0.1", IpClass::Public),
            ("192.168.1.1", IpClass::Private),
            ("169.254.1.1", IpClass::LinkLocal),
            ("169.254.169.254", IpClass::Metadata),
            ("100.64.0.1", IpClass::SharedCgnat),
            ("100.127.255.255", IpClass::SharedCgnat),
            ("100.128.0.1", IpClass::Public),
            ("100.63.0.1", IpClass::Public),
            ("224.0.0.1", IpClass::Multicast),
            ("239.255.255.250", IpClass::Multicast),
            ("255.255.255.255", IpClass::Broadcast),
            ("240.0.0.1", IpClass::Reserved),
            ("192.0.2.7", IpClass::Documentation),
            ("198.51.100.7", IpClass::Documentation),
            ("203.0.113.7", IpClass::Documentation),
            ("192.0.0.8", IpClass::Reserved),
            ("198.18.0.1", IpClass::Reserved),
            ("198.20.0.1", IpClass::Public),
        ],
        class,
        core::convert::identity,
    );
}

#[test]
fn ipv6_ranges_are_classified() {
    check_table(
        [
            ("2a00:1450:4001::1", IpClass::Public),
            ("::", IpClass::Unspecified),
            ("::1", IpClass::Loopback),
            ("::ffff:127.0.0.1", IpClass::Loopback),
            ("::ffff:10.0.0.1", IpClass::Private),
            ("::ffff:8.8.8.8", IpClass::Public),
            ("::127.0.0.1", IpClass::Reserved),
            ("64:ff9b::a00:1", IpClass::Private),
            ("64:ff9b::808:808", IpClass::Public),
            ("64:ff9b:1::1", IpClass::Reserved),
            ("2002:7f00:1::", IpClass::Loopback),
            ("2002:a9fe:a9fe::", IpClass::Metadata),
            ("2002:808:808::", IpClass::Public),
            ("fc00::1", IpClass::Private),
            ("fd12:3456::1", IpClass::Private),
            ("fd00:ec2::254", IpClass::Metadata),
            ("fe80::1", IpClass::LinkLocal),
            ("febf::1", IpClass::LinkLocal),
            ("fec0::1", IpClass::Private),
            ("ff02::1", IpClass::Multicast),
            ("2001:db8::1", IpClass::Documentation),
            ("3fff::1", IpClass::Documentation),
            ("2001::1", IpClass::Reserved),
            ("2001:10::1", IpClass::Reserved),
            ("100::1", IpClass::Reserved),
            ("4000::1", IpClass::Reserved),
        ],
        class,
        core::convert::identity,
    );
}

#[test]
fn only_plain_ws_urls_parse() {
    let u = parse_relay_url("wss://Relay.Example.com/ws").unwrap();
    assert!(u.secure);
    assert_eq!(u.host, Host::Name(String::from("relay.example.com")));
    assert_eq!((u.port, u.explicit_port), (443, false));
    assert_eq!(u.path, "/ws");
    let u = parse_relay_url("ws://[2a00::1]:8080").unwrap();
    assert_eq!(u.host, Host::Ip("2a00::1".parse().unwrap()));
    assert_eq!((u.port, u.explicit_port, u.path.as_str()), (8080, true, ""));
    let u = parse_relay_url("ws://1.2.3.4:1/a/b-c_d.e~f").unwrap();
    assert_eq!(u.host, Host::Ip(Ipv4Addr::new(1, 2, 3, 4).into()));
    check_table(
        [
            ("http://a.example/", DialError::BadScheme),
            ("WS://a.example/", DialError::BadScheme),
            ("ws://a.example/x?y=1", DialError::QueryOrFragment),
            ("ws://a.example/#f", DialError::QueryOrFragment),
            ("ws://user:pw@a.example/", DialError::UserInfo),
            ("ws://@a.example/", DialError::UserInfo),
            ("ws://a b/", DialError::BadCharacter),
            ("ws://a.example/\n", DialError::BadCharacter),
            ("ws://é.example/", DialError::BadCharacter),
            ("ws://", DialError::BadHost),
            ("ws:///x", DialError::BadHost),
            ("ws://a..b/", DialError::BadHost),
            ("ws://-a.example/", DialError::BadHost),
            ("ws://a_b.example/", DialError::BadHost),
            ("ws://[::1/", DialError::BadHost),
            ("ws://[::1]x/", DialError::BadHost),
            ("ws://[zz]/", DialError::BadHost),
            ("ws://a.example:/", DialError::BadPort),
            ("ws://a.example:0/", DialError::BadPort),
            ("ws://a.example:65536/", DialError::BadPort),
            ("ws://a.example:+80/", DialError::BadPort),
            ("ws://a.example:1:2/", DialError::BadPort),
            ("ws://127.1/", DialError::NumericHost),
            ("ws://2130706433/", DialError::NumericHost),
            ("ws://0x7f000001/", DialError::NumericHost),
            ("ws://010.0.0.1/", DialError::NumericHost),
            ("ws://a.example/%2e%2e", DialError::BadPath),
            ("ws://a.example/a/../b", DialError::BadPath),
            ("ws://a.example//b", DialError::BadPath),
            ("ws://a.example/\\", DialError::BadPath),
        ],
        parse_relay_url,
        Err,
    );
    let long_path = alloc::format!("ws://a.example/{}", "p".repeat(MAX_PATH));
    assert_eq!(parse_relay_url(&long_path), Err(DialError::PathTooLong));
    let long = alloc::format!("ws://{}.example/", "a".repeat(crate::wire::MAX_URL));
    assert_eq!(parse_relay_url(&long), Err(DialError::TooLong));
}

#[test]
fn the_default_policy_refuses_local_and_special_addresses() {
    let p = DialPolicy::relay(false);
    assert!(p.check_url("wss://relay.example.com:8443/ws").is_ok());
    assert!(p.check_url("ws://8.8.8.8/ws").is_ok());
    assert!(p.check_url("ws://[2a00::1]/ws").is_ok());
    check_table(
        [
            (
                "ws://127.0.0.1:8080/ws",
                DialError::Refused(IpClass::Loopback),
            ),
            ("ws://10.0.0.1/ws", DialError::Refused(IpClass::Private)),
            ("ws://192.168.0.1/", DialError::Refused(IpClass::Private)),
            (
                "ws://169.254.169.254/latest",
                DialError::Refused(IpClass::Metadata),
            ),
            (
                "ws://100.100.100.100/",
                DialError::Refused(IpClass::SharedCgnat),
            ),
            ("ws://[::1]:80/", DialError::Refused(IpClass::Loopback)),
            (
                "ws://[::ffff:192.168.0.1]/",
                DialError::Refused(IpClass::Private),
            ),
            ("ws://[fe80::1]/", DialError::Refused(IpClass::LinkLocal)),
            ("ws://[fd00::1]/", DialError::Refused(IpClass::Private)),
            ("ws://0.0.0.0/", DialError::Refused(IpClass::Unspecified)),
            ("ws://localhost:8080/", DialError::LocalName),
            ("ws://a.localhost/", DialError::LocalName),
            ("ws://printer.local/", DialError::LocalName),
            ("ws://db.internal/", DialError::LocalName),
            ("ws://intranet/", DialError::LocalName),
        ],
        |url| p.check_url(url).map(|_| ()),
        Err,
    );
}

#[test]
fn allowing_local_allows_only_local_ranges() {
    let p = DialPolicy::relay(true);
    for url in [
        "ws://127.0.0.1:8080/ws",
        "ws://localhost:1/",
        "ws://10.0.0.1/",
        "ws://[::1]:9/",
        "ws://100.64.0.1/",
        "ws://[fd00::1]/",
    ] {
        assert!(p.check_url(url).is_ok(), "{url}");
    }
    check_table(
        [
            ("169.254.169.254", IpClass::Metadata),
            ("0.0.0.0", IpClass::Unspecified),
            ("224.0.0.1", IpClass::Multicast),
            ("255.255.255.255", IpClass::Broadcast),
            ("192.0.2.1", IpClass::Documentation),
        ],
        |ip| p.check_ip(ip.parse().unwrap()),
        |c| Err(DialError::Refused(c)),
    );
    assert_eq!(
        p.check_ip(Ipv6Addr::UNSPECIFIED.into()),
        Err(DialError::Refused(IpClass::Unspecified))
    );
}

#[test]
fn a_browser_policy_allows_default_ports_and_its_own() {
    let p = DialPolicy {
        allow_local: false,
        any_port: false,
        also_port: Some(8443),
    };
    assert!(p.check_url("wss://relay.example.com/ws").is_ok());
    assert!(p.check_url("ws://relay.example.com:80/ws").is_ok());
    assert!(p.check_url("wss://relay.example.com:8443/ws").is_ok());
    assert_eq!(
        p.check_url("wss://relay.example.com:22/ws").map(|_| ()),
        Err(DialError::PortNotAllowed(22))
    );
    assert_eq!(
        p.check_url("ws://relay.example.com:443/ws").map(|_| ()),
        Err(DialError::PortNotAllowed(443))
    );
}

#[test]
fn a_browser_policy_follows_its_pages_relay() {
    let local = DialPolicy::browser("ws://127.0.0.1:8080/ws");
    assert!(local.allow_local && local.any_port);
    assert!(local.check_url("ws://127.0.0.1:9000/ws").is_ok());
    let public = DialPolicy::browser("wss://relay.example.com:8443/ws");
    assert_eq!(
        public,
        DialPolicy {
            allow_local: false,
            any_port: false,
            also_port: Some(8443),
        }
    );
    assert!(public.check_url("ws://10.0.0.1/ws").is_err());
    assert!(public.check_url("wss://other.example.org/ws").is_ok());
    assert!(public.check_url("wss://other.example.org:6379/ws").is_err());
    assert_eq!(
        DialPolicy::browser("wss://relay.example.com/ws").also_port,
        None
    );
    // An unusable page relay gives the strictest policy.
    let strict = DialPolicy::browser("nonsense");
    assert!(!strict.allow_local && !strict.any_port);
}
