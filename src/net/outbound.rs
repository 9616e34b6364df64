//! The one HTTP client for destinations a user's configuration chooses: webhook bots, Studio
//! HTTP widgets, run-function, form webhooks.
//!
//! Every hop is checked against [`super::ranges`]: a host name is resolved by our own resolver,
//! which refuses the lookup when any answer is not public, and the connection goes to exactly
//! the addresses it returned (no second lookup a rebinding DNS server could answer
//! differently). Literal IP hosts never reach a resolver, so they are checked on the first URL
//! ([`Outbound::check`]) and on every redirect hop, and redirects are capped. No proxy is used:
//! a proxy would resolve the name itself. `CHATWIRE_ALLOW_PRIVATE_HTTP` turns the address checks
//! off (tests, on-premises stand-ins) but keeps the scheme check and the redirect cap.
use super::ranges;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Most redirects followed, each re-checked.
const MAX_REDIRECTS: usize = 5;
/// Name resolution and TCP connect limits: a black-holed destination must not hold a turn.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a destination was refused. Never retried: the same address will be refused again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

impl Refused {
    fn private(host: &str, ip: IpAddr) -> Self {
        Self(format!(
            "{host} resolves to {ip}, a private, loopback or reserved address; set CHATWIRE_ALLOW_PRIVATE_HTTP=true to allow it"
        ))
    }

    /// The refusal inside a reqwest error (from the resolver or the redirect policy), if that
    /// is what ended the request.
    pub fn within<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
        let mut source: Option<&'a (dyn std::error::Error + 'static)> = Some(err);
        while let Some(err) = source {
            if let Some(refused) = err.downcast_ref::<Refused>() {
                return Some(refused);
            }
            source = err.source();
        }
        None
    }
}

/// Which addresses may be reached.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    allow_private: bool,
    /// Addresses to treat as public, and names resolved without DNS: lets a test stand a
    /// loopback server in for an internet host.
    treat_as_public: Vec<IpAddr>,
    hosts: HashMap<String, Vec<IpAddr>>,
}

impl Policy {
    pub fn new(allow_private: bool) -> Self {
        Self {
            allow_private,
            ..Self::default()
        }
    }

    /// Treats `ip` as public (tests only: a loopback server playing an internet host).
    pub fn treating_as_public(mut self, ip: IpAddr) -> Self {
        self.treat_as_public.push(ip);
        self
    }

    /// Resolves `name` to `addrs` without DNS; the answers are still checked.
    pub fn resolving(mut self, name: &str, addrs: &[IpAddr]) -> Self {
        self.hosts.insert(name.to_ascii_lowercase(), addrs.to_vec());
        self
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        self.allow_private || ranges::is_public(ip) || self.treat_as_public.contains(&ip)
    }

    /// Scheme, host, and (for literal addresses) the address of one URL.
    fn check_url(&self, url: &url::Url) -> Result<(), Refused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused(format!(
                "URL scheme {:?} is not allowed",
                url.scheme()
            )));
        }
        let ip = match url.host() {
            None => return Err(Refused("the URL has no host".into())),
            Some(url::Host::Domain(_)) => return Ok(()),
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        };
        if self.permits(ip) {
            Ok(())
        } else {
            Err(Refused::private(&ip.to_string(), ip))
        }
    }
}

/// The guarded client. Cheap to clone.
#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    policy: Arc<Policy>,
}

impl Outbound {
    pub fn new(policy: Policy) -> anyhow::Result<Self> {
        let policy = Arc::new(policy);
        let hops = policy.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error(Refused("too many redirects".into()));
            }
            match hops.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refused) => attempt.error(refused),
            }
        });
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(redirects)
            .connect_timeout(CONNECT_TIMEOUT)
            .dns_resolver(Arc::new(PublicResolver {
                policy: policy.clone(),
            }))
            .build()?;
        Ok(Self { client, policy })
    }

    /// Checks the first URL of a request (scheme, literal address); host names are checked
    /// when the client resolves them, on this hop and every redirect. Send the request with
    /// [`Outbound::client`] and the URL returned here.
    pub fn check(&self, url: &str) -> Result<url::Url, Refused> {
        let parsed = url::Url::parse(url.trim()).map_err(|_| Refused("invalid URL".into()))?;
        self.policy.check_url(&parsed)?;
        Ok(parsed)
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

struct PublicResolver {
    policy: Arc<Policy>,
}

impl Resolve for PublicResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_ascii_lowercase();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = match policy.hosts.get(&host) {
                Some(ips) => ips.iter().map(|ip| SocketAddr::new(*ip, 0)).collect(),
                None => tokio::time::timeout(
                    LOOKUP_TIMEOUT,
                    tokio::net::lookup_host((host.as_str(), 0)),
                )
                .await
                .map_err(|_| Refused(format!("resolving {host} timed out")))??
                .collect(),
            };
            if addrs.is_empty() {
                return Err(Refused(format!("{host} has no address")).into());
            }
            // A name with one internal answer is internal: the connector may try any of them.
            if let Some(bad) = addrs.iter().find(|a| !policy.permits(a.ip())) {
                return Err(Refused::private(&host, bad.ip()).into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use axum::Router;

    async fn serve(ip: [u8; 4], router: Router) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((ip, 0)))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        addr
    }

    /// An internal server (127.0.0.1) with a secret, and a "public" one (127.0.0.2, treated as
    /// public, reachable as public.test) that redirects to `target`.
    async fn redirecting_to(target: impl Fn(SocketAddr) -> String) -> (Outbound, String) {
        let internal = serve(
            [127, 0, 0, 1],
            Router::new().route("/secret", get(|| async { "instance credentials" })),
        )
        .await;
        let location = target(internal);
        let public = serve(
            [127, 0, 0, 2],
            Router::new().route(
                "/start",
                get(move || async move { axum::response::Redirect::temporary(&location) }),
            ),
        )
        .await;
        let policy = Policy::new(false)
            .treating_as_public(public.ip())
            .resolving("public.test", &[public.ip()])
            .resolving("internal.test", &[internal.ip()]);
        let outbound = Outbound::new(policy).expect("client");
        (
            outbound,
            format!("http://public.test:{}/start", public.port()),
        )
    }

    async fn fetch(outbound: &Outbound, url: &str) -> Result<String, reqwest::Error> {
        let url = outbound.check(url).expect("first hop is public");
        outbound.client().get(url).send().await?.text().await
    }

    #[tokio::test]
    async fn a_public_url_redirecting_to_a_loopback_address_is_refused() {
        let (outbound, start) = redirecting_to(|a| format!("http://{a}/secret")).await;
        let err = fetch(&outbound, &start).await.expect_err("refused");
        let refused = Refused::within(&err).expect("refused by the policy");
        assert!(refused.0.contains("127.0.0.1"), "{refused}");
    }

    #[tokio::test]
    async fn a_redirect_to_a_name_resolving_to_loopback_is_refused() {
        let (outbound, start) =
            redirecting_to(|a| format!("http://internal.test:{}/secret", a.port())).await;
        let err = fetch(&outbound, &start).await.expect_err("refused");
        let refused = Refused::within(&err).expect("refused by the resolver");
        assert!(refused.0.contains("internal.test"), "{refused}");
    }

    #[tokio::test]
    async fn redirects_are_followed_when_private_addresses_are_allowed() {
        let (_, start) = redirecting_to(|a| format!("http://{a}/secret")).await;
        let public = start.replace("public.test", "127.0.0.2");
        let outbound = Outbound::new(Policy::new(true)).expect("client");
        assert_eq!(
            fetch(&outbound, &public).await.expect("followed"),
            "instance credentials"
        );
    }

    #[tokio::test]
    async fn literal_internal_hosts_and_other_schemes_are_refused_before_connecting() {
        let outbound = Outbound::new(Policy::new(false)).expect("client");
        for url in [
            "http://127.0.0.1/x",
            "http://[::1]/x",
            "http://169.254.169.254/latest/meta-data/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[2002:7f00:1::]/",
            "http://[::ffff:10.0.0.1]/",
            "ftp://example.com/x",
        ] {
            assert!(outbound.check(url).is_err(), "{url}");
        }
        assert!(outbound.check("https://example.com/x").is_ok());
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_without_connecting() {
        let outbound = Outbound::new(Policy::new(false)).expect("client");
        let url = outbound
            .check("http://localhost:9/x")
            .expect("names pass the first check");
        let err = outbound
            .client()
            .get(url)
            .send()
            .await
            .expect_err("refused");
        assert!(Refused::within(&err).is_some(), "{err:?}");
    }
}
