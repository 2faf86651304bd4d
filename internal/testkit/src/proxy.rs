//! A forward proxy on loopback that records what goes through it: HTTP (absolute-form
//! requests and `CONNECT` tunnels) and SOCKS5, on one port.
//!
//! [`ProxyServer::start`] binds `127.0.0.1:0`. Each connection is told apart by its first
//! byte (5 is SOCKS5, anything else HTTP) and serves one request:
//!
//! - `GET http://127.0.0.1:PORT/path HTTP/1.1`: forwarded to the target in origin form, with
//!   `Connection: close` and without the `Proxy-*` headers, and the answer relayed;
//! - `CONNECT host:port`: `200` then a tunnel both ways (for `https://` targets);
//! - SOCKS5 `CONNECT`, without authentication or with any user name and password (the user
//!   name is recorded as the header `socks-user`), to an IPv4, IPv6 or named target.
//!
//! A target that cannot be reached is a `502` (HTTP) or a "connection refused" reply
//! (SOCKS5). Every request is recorded, see [`ProxyServer::requests`], before it is
//! forwarded. [`ProxyServer::stop`] closes the port, so that connecting is refused; the
//! server also stops when dropped.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The longest request head the proxy reads.
const MAX_HEAD: usize = 64 * 1024;

/// How a request came to the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyProtocol {
    /// A plain HTTP request in absolute form.
    Http,
    /// An HTTP `CONNECT` tunnel.
    Connect,
    /// A SOCKS5 `CONNECT`.
    Socks5,
}

/// One request the proxy received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxiedRequest {
    pub protocol: ProxyProtocol,
    /// `GET`, `POST`… for [`ProxyProtocol::Http`], `CONNECT` otherwise.
    pub method: String,
    /// The absolute URI of an HTTP request, `host:port` of a tunnel.
    pub target: String,
    /// The request's headers as received, names lower-cased, in order (a tunnel's are those
    /// of its `CONNECT`; a SOCKS5 request has `socks-user` when it authenticated).
    pub headers: Vec<(String, String)>,
}

impl ProxiedRequest {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A running loopback proxy; see the module documentation.
pub struct ProxyServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<ProxiedRequest>>>,
    token: CancellationToken,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl ProxyServer {
    /// Binds `127.0.0.1` on a free port and serves in a background task until stopped or
    /// dropped.
    ///
    /// # Panics
    ///
    /// Panics when no loopback port can be bound.
    pub async fn start() -> ProxyServer {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind a loopback port for the proxy");
        let addr = listener.local_addr().expect("read the bound address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let token = CancellationToken::new();
        let accept = tokio::spawn(accept_loop(listener, requests.clone(), token.clone()));
        ProxyServer {
            addr,
            requests,
            token,
            accept: Mutex::new(Some(accept)),
        }
    }

    /// The proxy's HTTP URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The proxy's URL with credentials, `http://user:password@127.0.0.1:PORT` (the proxy
    /// accepts any).
    pub fn url_with_credentials(&self, user: &str, password: &str) -> String {
        format!("http://{user}:{password}@{}", self.addr)
    }

    /// The proxy's SOCKS5 URL, `socks5://127.0.0.1:PORT` (names resolved by the client).
    pub fn socks5_url(&self) -> String {
        format!("socks5://{}", self.addr)
    }

    /// The proxy's SOCKS5 URL with names resolved by the proxy, `socks5h://127.0.0.1:PORT`.
    pub fn socks5h_url(&self) -> String {
        format!("socks5h://{}", self.addr)
    }

    /// The address the proxy listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<ProxiedRequest> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Closes the port and every connection: from when this returns, connecting to the
    /// proxy is refused.
    pub async fn stop(&self) {
        self.token.cancel();
        let accept = self.accept.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(accept) = accept {
            // The task ends as soon as it sees the token; it drops the listener as it ends.
            let _ = accept.await;
        }
    }
}

impl Drop for ProxyServer {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

async fn accept_loop(
    listener: TcpListener,
    requests: Arc<Mutex<Vec<ProxiedRequest>>>,
    token: CancellationToken,
) {
    loop {
        let stream = tokio::select! {
            () = token.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let requests = requests.clone();
        let token = token.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = token.cancelled() => {}
                _ = serve(stream, requests) => {}
            }
        });
    }
}

fn record(requests: &Mutex<Vec<ProxiedRequest>>, request: ProxiedRequest) {
    requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(request);
}

/// Serves one connection: SOCKS5 or HTTP by its first byte.
async fn serve(
    mut client: TcpStream,
    requests: Arc<Mutex<Vec<ProxiedRequest>>>,
) -> std::io::Result<()> {
    let mut first = [0u8; 1];
    client.read_exact(&mut first).await?;
    if first[0] == 5 {
        socks5(client, &requests).await
    } else {
        http(client, first[0], &requests).await
    }
}

/// Reads an HTTP request head (the first byte already read); returns it and what came after.
async fn read_head(client: &mut TcpStream, first: u8) -> std::io::Result<(String, Vec<u8>)> {
    let mut buf = vec![first];
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((String::from_utf8_lossy(&buf).into_owned(), rest));
        }
        if buf.len() > MAX_HEAD {
            return Err(std::io::Error::other("request head too long"));
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn http(
    mut client: TcpStream,
    first: u8,
    requests: &Mutex<Vec<ProxiedRequest>>,
) -> std::io::Result<()> {
    let (head, rest) = read_head(&mut client, first).await?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let (name, value) = l.split_once(':')?;
            Some((name.trim().to_ascii_lowercase(), value.trim().to_string()))
        })
        .collect();

    if method.eq_ignore_ascii_case("CONNECT") {
        record(
            requests,
            ProxiedRequest {
                protocol: ProxyProtocol::Connect,
                method,
                target: target.clone(),
                headers,
            },
        );
        let Ok(mut upstream) = TcpStream::connect(target.as_str()).await else {
            return bad_gateway(&mut client).await;
        };
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await?;
        upstream.write_all(&rest).await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
        return Ok(());
    }

    record(
        requests,
        ProxiedRequest {
            protocol: ProxyProtocol::Http,
            method: method.clone(),
            target: target.clone(),
            headers: headers.clone(),
        },
    );
    let Ok(url) = url::Url::parse(&target) else {
        client
            .write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await?;
        return Ok(());
    };
    let host = url.host_str().unwrap_or("127.0.0.1").to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let Ok(mut upstream) = TcpStream::connect((host.as_str(), port)).await else {
        return bad_gateway(&mut client).await;
    };
    let mut path = url.path().to_string();
    if let Some(query) = url.query() {
        path.push('?');
        path.push_str(query);
    }
    let mut forwarded = format!("{method} {path} HTTP/1.1\r\n");
    for (name, value) in &headers {
        let hop = [
            "connection",
            "keep-alive",
            "proxy-connection",
            "proxy-authorization",
        ];
        if !hop.contains(&name.as_str()) {
            forwarded.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    forwarded.push_str("connection: close\r\n\r\n");
    upstream.write_all(forwarded.as_bytes()).await?;
    upstream.write_all(&rest).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

async fn bad_gateway(client: &mut TcpStream) -> std::io::Result<()> {
    client
        .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .await
}

/// SOCKS5 (RFC 1928, with RFC 1929's user name and password), the version byte already read.
async fn socks5(
    mut client: TcpStream,
    requests: &Mutex<Vec<ProxiedRequest>>,
) -> std::io::Result<()> {
    let count = client.read_u8().await?;
    let mut methods = vec![0u8; usize::from(count)];
    client.read_exact(&mut methods).await?;
    let mut headers = Vec::new();
    if methods.contains(&2) {
        client.write_all(&[5, 2]).await?;
        let _version = client.read_u8().await?;
        let user_len = client.read_u8().await?;
        let mut user = vec![0u8; usize::from(user_len)];
        client.read_exact(&mut user).await?;
        let pass_len = client.read_u8().await?;
        let mut pass = vec![0u8; usize::from(pass_len)];
        client.read_exact(&mut pass).await?;
        client.write_all(&[1, 0]).await?;
        headers.push((
            "socks-user".to_string(),
            String::from_utf8_lossy(&user).into_owned(),
        ));
    } else if methods.contains(&0) {
        client.write_all(&[5, 0]).await?;
    } else {
        client.write_all(&[5, 0xff]).await?;
        return Ok(());
    }

    let mut request = [0u8; 4];
    client.read_exact(&mut request).await?;
    let [_, command, _, address_type] = request;
    let host = match address_type {
        1 => {
            let mut ip = [0u8; 4];
            client.read_exact(&mut ip).await?;
            std::net::Ipv4Addr::from(ip).to_string()
        }
        4 => {
            let mut ip = [0u8; 16];
            client.read_exact(&mut ip).await?;
            format!("[{}]", std::net::Ipv6Addr::from(ip))
        }
        3 => {
            let len = client.read_u8().await?;
            let mut name = vec![0u8; usize::from(len)];
            client.read_exact(&mut name).await?;
            String::from_utf8_lossy(&name).into_owned()
        }
        _ => return reply(&mut client, 8).await,
    };
    let port = client.read_u16().await?;
    let target = format!("{host}:{port}");
    if command != 1 {
        return reply(&mut client, 7).await;
    }
    record(
        requests,
        ProxiedRequest {
            protocol: ProxyProtocol::Socks5,
            method: "CONNECT".to_string(),
            target: target.clone(),
            headers,
        },
    );
    let upstream = TcpStream::connect((host.trim_matches(['[', ']']), port)).await;
    let Ok(mut upstream) = upstream else {
        return reply(&mut client, 5).await;
    };
    reply(&mut client, 0).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

/// A SOCKS5 reply with code `code` (0 success, 5 refused, 7 command, 8 address type).
async fn reply(client: &mut TcpStream, code: u8) -> std::io::Result<()> {
    client.write_all(&[5, code, 0, 1, 0, 0, 0, 0, 0, 0]).await
}
