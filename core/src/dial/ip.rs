//! What kind of address an IP is, for the dial policy: public, or one of the ranges a node
//! must not be talked into dialing (loopback, private, link-local, CGNAT, metadata …).

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The class of an IP address. Everything but [`IpClass::Public`] is refused by default;
/// [`IpClass::is_local`] says which classes an operator may allow for a local test network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum IpClass {
    /// Routable on the internet.
    Public,
    /// `0.0.0.0/8`, `::` (on many systems a connection to it reaches the host itself).
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `10/8`, `172.16/12`, `192.168/16`, IPv6 unique-local `fc00::/7` and the
    /// deprecated site-local `fec0::/10`.
    Private,
    /// `169.254/16`, `fe80::/10`.
    LinkLocal,
    /// The cloud metadata service `169.254.169.254` (and AWS's `fd00:ec2::254`).
    Metadata,
    /// Carrier-grade NAT `100.64.0.0/10`.
    SharedCgnat,
    /// `224/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// Everything else that is not routable: `192.0.0/24`, benchmarking `198.18/15`,
    /// `240/4`, IPv6 discard `100::/64`, Teredo `2001::/32`, IPv4-compatible `::/96`,
    /// local-use NAT64 `64:ff9b:1::/48`, ORCHID and other IETF special ranges.
    Reserved,
}

impl IpClass {
    /// Classes an operator may allow for a local test network (`--allow-local-dial`).
    /// Unspecified, multicast, broadcast, documentation, reserved and the metadata service
    /// are never dialed.
    pub fn is_local(self) -> bool {
        matches!(
            self,
            IpClass::Loopback | IpClass::Private | IpClass::LinkLocal | IpClass::SharedCgnat
        )
    }
}

impl fmt::Display for IpClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IpClass::Public => "public",
            IpClass::Unspecified => "unspecified",
            IpClass::Loopback => "loopback",
            IpClass::Private => "private",
            IpClass::LinkLocal => "link-local",
            IpClass::Metadata => "metadata service",
            IpClass::SharedCgnat => "shared (cgnat)",
            IpClass::Multicast => "multicast",
            IpClass::Broadcast => "broadcast",
            IpClass::Documentation => "documentation",
            IpClass::Reserved => "reserved",
        })
    }
}

/// The class of `ip`. IPv6 addresses that embed an IPv4 address (mapped `::ffff:0:0/96`,
/// NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are classified by the IPv4 address.
pub fn classify(ip: IpAddr) -> IpClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// The class of an IPv4 address.
pub fn classify_v4(ip: Ipv4Addr) -> IpClass {
    let [a, b, c, d] = ip.octets();
    match (a, b, c, d) {
        (169, 254, 169, 254) => IpClass::Metadata,
        (0, ..) => IpClass::Unspecified,
        (127, ..) => IpClass::Loopback,
        (10, ..) | (192, 168, ..) => IpClass::Private,
        (172, b, ..) if b & 0xf0 == 16 => IpClass::Private,
        (169, 254, ..) => IpClass::LinkLocal,
        (100, b, ..) if b & 0xc0 == 64 => IpClass::SharedCgnat,
        (255, 255, 255, 255) => IpClass::Broadcast,
        (224..=239, ..) => IpClass::Multicast,
        (240..=255, ..) => IpClass::Reserved,
        (192, 0, 2, _) | (198, 51, 100, _) | (203, 0, 113, _) => IpClass::Documentation,
        (192, 0, 0, _) => IpClass::Reserved,
        (198, 18 | 19, ..) => IpClass::Reserved,
        _ => IpClass::Public,
    }
}

/// The class of an IPv6 address.
pub fn classify_v6(ip: Ipv6Addr) -> IpClass {
    let s = ip.segments();
    let embedded =
        |hi: u16, lo: u16| classify_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    if ip.is_unspecified() {
        return IpClass::Unspecified;
    }
    if ip.is_loopback() {
        return IpClass::Loopback;
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
        return IpClass::Metadata;
    }
    match s {
        // IPv4-compatible (deprecated) and the rest of ::/96.
        [0, 0, 0, 0, 0, 0, _, _] => IpClass::Reserved,
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => embedded(hi, lo),
        [0x64, 0xff9b, 1, ..] => IpClass::Reserved,
        [0x2002, hi, lo, ..] => embedded(hi, lo),
        [0x0100, 0, 0, 0, ..] => IpClass::Reserved,
        [0x2001, 0x0db8, ..] => IpClass::Documentation,
        [0x2001, 0, ..] => IpClass::Reserved,
        // IETF protocol assignments 2001::/23 beyond Teredo (ORCHID, AMT, …).
        [0x2001, b, ..] if b < 0x0200 => IpClass::Reserved,
        [a, ..] if a & 0xfff0 == 0x3ff0 => IpClass::Documentation,
        [a, ..] if a & 0xfe00 == 0xfc00 => IpClass::Private,
        [a, ..] if a & 0xffc0 == 0xfe80 => IpClass::LinkLocal,
        [a, ..] if a & 0xffc0 == 0xfec0 => IpClass::Private,
        [a, ..] if a & 0xff00 == 0xff00 => IpClass::Multicast,
        // Only 2000::/3 is allocated as global unicast.
        [a, ..] if a & 0xe000 == 0x2000 => IpClass::Public,
        _ => IpClass::Reserved,
    }
}
