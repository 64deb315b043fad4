//! Fuzzing the parsers partners and strangers feed, on stable Rust (no nightly, so no
//! libFuzzer): each target is a function from bytes to "fine" or a broken property, driven by
//! a time-bounded mutation loop over a seed corpus (`fuzz/corpus/<target>/`). The driver catches
//! panics, and a counting allocator caps what a single input may hold at once.
//!
//! `make fuzz` runs every target for a fixed time (`FUZZ_SECONDS`, default 60) in release;
//! `make test` runs each over its corpus and a few seconds of mutations (`fuzz/tests/smoke.rs`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use seyaha::api::auth::JwtVerifier;
use seyaha::api::{MAX_COUNT, parse_notify};
use seyaha::domain::{BaseUrl, Timestamp};
use seyaha::net::{EndpointPolicy, is_refused_ip};
use seyaha::sync::{canonicalize, parse_catalog};

// ---- The allocation cap ----

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, counting what this thread holds and its peak (the driver and the
/// smoke test install it as the global allocator).
pub struct CountingAllocator;

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn count(delta: isize) {
    // `try_with`: the thread-locals may be gone while a thread shuts down.
    let _ = LIVE.try_with(|live| {
        let now = live.get().saturating_add_signed(delta);
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

/// What one input may hold at once beyond what was live before it: a fixed allowance plus a
/// multiple of its own size (parsers keep a copy or two of what they read).
pub fn allocation_cap(input_len: usize) -> usize {
    4 * 1024 * 1024 + 16 * input_len
}

// ---- The targets ----

pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]) -> Result<(), String>,
}

pub const TARGETS: [Target; 5] = [
    Target {
        name: "products",
        run: products,
    },
    Target {
        name: "notify",
        run: notify,
    },
    Target {
        name: "jwt",
        run: jwt,
    },
    Target {
        name: "base_url",
        run: base_url,
    },
    Target {
        name: "ssrf",
        run: ssrf,
    },
];

/// The OCTO products parser with the streaming canonical writer: whatever it accepts, the
/// canonical form of the body is stable (canonical output parses back to the same value).
fn products(input: &[u8]) -> Result<(), String> {
    let now = Timestamp::parse("2026-11-23T00:00:00Z").expect("a valid timestamp");
    let Ok(parsed) = parse_catalog(input, now) else {
        return Ok(());
    };
    let canonical = canonicalize(input)
        .map_err(|e| format!("accepted by parse_catalog but not canonicalizable: {e}"))?;
    let again =
        canonicalize(&canonical).map_err(|e| format!("canonical output does not parse: {e}"))?;
    if again != canonical {
        return Err("canonical output is not a fixed point".into());
    }
    let original: serde_json::Value = serde_json::from_slice(input).map_err(|e| e.to_string())?;
    let back: serde_json::Value = serde_json::from_slice(&canonical).map_err(|e| e.to_string())?;
    if !same_value(&original, &back) {
        return Err("canonical output is another value".into());
    }
    if parsed.activities.len() + parsed.rejections.len() > original.as_array().map_or(0, Vec::len) {
        return Err("more activities and rejections than products".into());
    }
    Ok(())
}

/// JSON equality where numbers compare as numbers (the canonical form spells them its way).
fn same_value(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::{Array, Number, Object};
    match (a, b) {
        (Number(x), Number(y)) => x.as_f64() == y.as_f64(),
        (Array(x), Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y))
        }
        (Object(x), Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}

/// The notify body parser: what it accepts is within the documented bounds.
fn notify(input: &[u8]) -> Result<(), String> {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(input) else {
        return Ok(());
    };
    let Ok(update) = parse_notify(&body) else {
        return Ok(());
    };
    for (name, id) in [
        ("productId", &update.product_id),
        ("optionId", &update.option_id),
        ("availabilityId", &update.availability_id),
    ] {
        if id.trim().is_empty() || id.len() > 256 {
            return Err(format!("accepted {name} of {} bytes", id.len()));
        }
    }
    for count in [update.vacancies, update.capacity].into_iter().flatten() {
        if count > MAX_COUNT {
            return Err(format!("accepted a count of {count}"));
        }
    }
    if let (Some(vacancies), Some(capacity)) = (update.vacancies, update.capacity)
        && vacancies > capacity
    {
        return Err("accepted vacancies over capacity".into());
    }
    Ok(())
}

/// The JWT extractor: random headers never authenticate (nothing here knows the secret).
fn jwt(input: &[u8]) -> Result<(), String> {
    static VERIFIER: std::sync::OnceLock<JwtVerifier> = std::sync::OnceLock::new();
    let verifier = VERIFIER.get_or_init(|| {
        JwtVerifier::new(&SecretString::from(
            "fuzzing-secret-0123456789abcdef0123456789",
        ))
    });
    let header = String::from_utf8_lossy(input);
    match verifier.verify_header(Some(&header)) {
        Ok(principal) => Err(format!(
            "a header nobody signed authenticated as {principal:?}"
        )),
        Err(_) => Ok(()),
    }
}

/// The base URL parser: what it accepts prints and parses back to itself, over http(s).
fn base_url(input: &[u8]) -> Result<(), String> {
    let Ok(text) = std::str::from_utf8(input) else {
        return Ok(());
    };
    let Ok(url) = BaseUrl::parse(text) else {
        return Ok(());
    };
    let printed = url.to_string();
    if !(printed.starts_with("https://") || printed.starts_with("http://")) {
        return Err(format!("accepted a non-http(s) URL: {printed}"));
    }
    match BaseUrl::parse(&printed) {
        Ok(again) if again == url => Ok(()),
        Ok(again) => Err(format!("{printed} parses back as {again}")),
        Err(error) => Err(format!("{printed} does not parse back: {error}")),
    }
}

/// The SSRF classifier: an address it lets through is in no refused range, judged by an
/// independent oracle built on the standard library; the same for a URL with that literal host.
fn ssrf(input: &[u8]) -> Result<(), String> {
    let ip = match input.len() {
        4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(input).expect("4 bytes"))),
        16 => IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(input).expect("16 bytes"),
        )),
        _ => return Ok(()),
    };
    let oracle_refuses = refused_by_oracle(ip);
    if !is_refused_ip(ip) && oracle_refuses {
        return Err(format!(
            "{ip} passes the classifier but is in a refused range"
        ));
    }
    let host = match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    if let Ok(url) = BaseUrl::parse(&format!("https://{host}/octo"))
        && EndpointPolicy::strict().check_url(&url).is_ok()
        && oracle_refuses
    {
        return Err(format!(
            "https://{host}/octo passes the endpoint policy but {ip} is in a refused range"
        ));
    }
    Ok(())
}

/// Loopback, private, link-local, CGNAT, unspecified, multicast, broadcast, documentation,
/// unique-local, IPv4 inside IPv6 (mapped or compatible) judged as IPv4, and the IPv4-translated
/// range whole.
fn refused_by_oracle(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || (a == 100 && (64..128).contains(&b))
                || a == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return refused_by_oracle(IpAddr::V4(v4));
            }
            let segments = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                // ::ffff:0:0:0/96, IPv4-translated (RFC 2765): refused whatever it embeds.
                || (segments[..4] == [0; 4] && segments[4] == 0xffff && segments[5] == 0)
                || (segments[..6] == [0; 6]
                    && refused_by_oracle(IpAddr::V4(Ipv4Addr::from(((segments[6] as u32) << 16) | segments[7] as u32))))
        }
    }
}

// ---- The driver ----

/// What one target's run came to.
#[derive(Debug, Default)]
pub struct Report {
    pub executions: u64,
    /// Inputs that panicked, broke a property or went over the allocation cap, with why.
    pub failures: Vec<(Vec<u8>, String)>,
}

/// Runs one input: a panic, a broken property or an allocation over the cap is a failure.
pub fn run_one(target: &Target, input: &[u8]) -> Result<(), String> {
    let before = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(before));
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
    let held = PEAK.with(Cell::get).saturating_sub(before);
    match outcome {
        Err(panic) => Err(format!(
            "panicked: {}",
            seyaha::logging::panic_message(panic.as_ref())
        )),
        Ok(Err(broken)) => Err(broken),
        Ok(Ok(())) if held > allocation_cap(input.len()) => Err(format!(
            "held {held} bytes at once for a {}-byte input (cap {})",
            input.len(),
            allocation_cap(input.len())
        )),
        Ok(Ok(())) => Ok(()),
    }
}

/// The seed corpus of a target.
pub fn corpus(root: &Path, target: &str) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(target))
        .map(|dir| dir.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .filter_map(|path| std::fs::read(path).ok())
        .collect()
}

/// A small, fast generator (xorshift64*), seeded from the OS.
pub struct Rng(u64);

impl Rng {
    pub fn new() -> Self {
        let mut seed = [0u8; 8];
        getrandom::fill(&mut seed).expect("randomness");
        Self(u64::from_le_bytes(seed) | 1)
    }
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1) as u64) as usize
    }
}

impl Default for Rng {
    fn default() -> Self {
        Self::new()
    }
}

/// Tokens worth inserting: JSON structure, numbers at the edges, escapes, URL and JWT parts.
const TOKENS: &[&[u8]] = &[
    b"[",
    b"]",
    b"{",
    b"}",
    b"\"",
    b":",
    b",",
    b"null",
    b"true",
    b"-0",
    b"1e309",
    b"9007199254740993",
    b"\\u0000",
    b"\\ud800",
    b"\xff",
    b"\xc3\x28",
    b"0.1",
    b"\"options\"",
    b"\"id\"",
    b"\"internalName\"",
    b"https://",
    b"http://",
    b"@",
    b"[::1]",
    b"%2e",
    b"127.0.0.1",
    b"Bearer ",
    b".",
    b"eyJhbGciOiJub25lIn0",
    b"availability",
    b"\"productId\"",
];

/// One mutation of `input` (sometimes spliced with another corpus entry).
pub fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(7) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 => out.insert(at, rng.below(256) as u8),
            2 if !out.is_empty() => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                out.drain(at.min(out.len())..end);
            }
            3 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                out.splice(at..at, token.iter().copied());
            }
            4 if !out.is_empty() => {
                // Repeat a slice: nesting and long strings.
                let start = rng.below(out.len());
                let end = (start + 1 + rng.below(8)).min(out.len());
                let piece = out[start..end].repeat(1 + rng.below(64));
                out.splice(at..at, piece);
            }
            5 if !corpus.is_empty() => {
                let other = &corpus[rng.below(corpus.len())];
                let cut = rng.below(other.len() + 1);
                out.truncate(at);
                out.extend_from_slice(&other[cut..]);
            }
            _ => out.truncate(at),
        }
    }
    out.truncate(1 << 20);
    out
}

/// The corpus, then mutations until `duration` has passed.
pub fn fuzz(target: &Target, corpus: &[Vec<u8>], duration: Duration) -> Report {
    let mut report = Report::default();
    let mut rng = Rng::new();
    let check = |input: Vec<u8>, report: &mut Report| {
        report.executions += 1;
        if let Err(why) = run_one(target, &input) {
            report.failures.push((input, why));
        }
    };
    for input in corpus {
        check(input.clone(), &mut report);
    }
    let seeds: Vec<Vec<u8>> = if corpus.is_empty() {
        vec![Vec::new()]
    } else {
        corpus.to_vec()
    };
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline && report.failures.len() < 20 {
        for _ in 0..64 {
            let seed = &seeds[rng.below(seeds.len())];
            let input = mutate(&mut rng, seed, &seeds);
            check(input, &mut report);
        }
    }
    report
}
