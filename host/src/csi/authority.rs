//! A front for gRPC servers on unix sockets that some Go clients cannot
//! otherwise reach.
//!
//! kubelet's plugin watcher dials the registration socket by its path, so
//! grpc-go sends that path as the HTTP/2 `:authority`. A path is not a
//! valid authority, and the HTTP/2 server under tonic resets every such
//! request (PROTOCOL_ERROR): kubelet never learns the plugin exists
//! (kubelet's own CSI client sends `localhost` since Kubernetes 1.26; its
//! registration client does not). This front sits between each accepted
//! connection and the server: it passes every frame through unchanged,
//! except header blocks from the client, whose `:authority` it replaces
//! with `localhost` when it is not a valid authority.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};

/// The client connection preface (RFC 9113 §3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Frame types and flags (RFC 9113 §6).
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

/// The largest frame payload every peer accepts (the initial
/// SETTINGS_MAX_FRAME_SIZE).
const MAX_FRAME: usize = 16_384;

/// The largest header block this front assembles.
const MAX_BLOCK: usize = 64 * 1024;

/// The buffer between the front and the server, per connection.
const PIPE: usize = 64 * 1024;

/// Front `client`: returns the stream to hand the gRPC server, and drives
/// the copying on a task until either side closes.
pub fn front<C>(client: C) -> DuplexStream
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (server_side, ours) = tokio::io::duplex(PIPE);
    tokio::spawn(async move {
        let (mut client_read, mut client_write) = tokio::io::split(client);
        let (mut server_read, mut server_write) = tokio::io::split(ours);
        let upstream = rewrite(&mut client_read, &mut server_write);
        let downstream = tokio::io::copy(&mut server_read, &mut client_write);
        // Either direction ending ends the connection.
        let outcome = tokio::select! {
            r = upstream => r,
            r = downstream => r.map(|_| ()),
        };
        if let Err(e) = outcome {
            tracing::debug!(error = %e, "a fronted gRPC connection ended");
        }
    });
    server_side
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

/// Copy the client's bytes to the server, rewriting header blocks.
async fn rewrite<R, W>(from: &mut R, to: &mut W) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut preface = [0u8; 24];
    from.read_exact(&mut preface).await?;
    if &preface != PREFACE {
        return Err(invalid("not an HTTP/2 connection preface"));
    }
    to.write_all(&preface).await?;
    let mut decoder = hpack::Decoder::new();
    loop {
        let mut head = [0u8; 9];
        match from.read_exact(&mut head).await {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let (kind, flags) = (head[3], head[4]);
        let stream = [head[5], head[6], head[7], head[8]];
        let mut payload = vec![0u8; length];
        from.read_exact(&mut payload).await?;
        if kind != HEADERS {
            to.write_all(&head).await?;
            to.write_all(&payload).await?;
            to.flush().await?;
            continue;
        }
        let (priority, mut block) = headers_payload(flags, &payload)?;
        let mut end = flags & END_HEADERS != 0;
        while !end {
            let mut head = [0u8; 9];
            from.read_exact(&mut head).await?;
            let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            if head[3] != CONTINUATION || head[5..9] != stream {
                return Err(invalid("a header block interrupted by another frame"));
            }
            if block.len() + length > MAX_BLOCK {
                return Err(invalid("a header block over 64 KiB"));
            }
            let mut more = vec![0u8; length];
            from.read_exact(&mut more).await?;
            block.extend_from_slice(&more);
            end = head[4] & END_HEADERS != 0;
        }
        let fields = decoder
            .decode(&block)
            .map_err(|e| invalid(format!("an undecodable header block: {e:?}")))?;
        let block = encode(&fields);
        let frames = frames(flags & (END_STREAM | PRIORITY), stream, priority, &block);
        to.write_all(&frames).await?;
        to.flush().await?;
    }
}

/// A HEADERS frame's priority fields (when flagged) and header block
/// fragment, padding removed.
fn headers_payload(flags: u8, payload: &[u8]) -> io::Result<(Option<[u8; 5]>, Vec<u8>)> {
    let mut rest = payload;
    let mut pad = 0usize;
    if flags & PADDED != 0 {
        let (&length, tail) = rest
            .split_first()
            .ok_or_else(|| invalid("a padded HEADERS frame without its pad length"))?;
        pad = usize::from(length);
        rest = tail;
    }
    let priority = if flags & PRIORITY != 0 {
        if rest.len() < 5 {
            return Err(invalid("a HEADERS frame too short for its priority"));
        }
        let (fields, tail) = rest.split_at(5);
        rest = tail;
        Some([fields[0], fields[1], fields[2], fields[3], fields[4]])
    } else {
        None
    };
    if pad > rest.len() {
        return Err(invalid("HEADERS padding longer than the frame"));
    }
    Ok((priority, rest[..rest.len() - pad].to_vec()))
}

/// The header fields again, with an invalid `:authority` as `localhost`,
/// each as a literal without indexing (no dynamic table, so nothing for
/// the server's decoder to keep in step with).
fn encode(fields: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        let value: &[u8] = if name == b":authority" && !valid_authority(value) {
            b"localhost"
        } else {
            value
        };
        out.push(0x00);
        string(&mut out, name);
        string(&mut out, value);
    }
    out
}

/// Whether `value` is an authority the HTTP/2 server accepts.
fn valid_authority(value: &[u8]) -> bool {
    tonic::codegen::http::uri::Authority::try_from(value).is_ok()
}

/// An HPACK string literal, not Huffman-coded (RFC 7541 §5.2).
fn string(out: &mut Vec<u8>, bytes: &[u8]) {
    integer(out, bytes.len(), 7, 0x00);
    out.extend_from_slice(bytes);
}

/// An HPACK integer with an `n`-bit prefix (RFC 7541 §5.1).
fn integer(out: &mut Vec<u8>, mut value: usize, n: u32, high: u8) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(high | value as u8);
        return;
    }
    out.push(high | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// A HEADERS frame (and CONTINUATIONs, if the block needs them) carrying
/// `block` on `stream`.
fn frames(flags: u8, stream: [u8; 4], priority: Option<[u8; 5]>, block: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let first_room = MAX_FRAME - priority.map_or(0, |_| 5);
    let (first, mut rest) = block.split_at(block.len().min(first_room));
    let head = |out: &mut Vec<u8>, length: usize, kind: u8, flags: u8| {
        out.extend_from_slice(&(length as u32).to_be_bytes()[1..]);
        out.push(kind);
        out.push(flags);
        out.extend_from_slice(&stream);
    };
    let last = rest.is_empty();
    head(
        &mut out,
        first.len() + priority.map_or(0, |_| 5),
        HEADERS,
        flags | if last { END_HEADERS } else { 0 },
    );
    if let Some(priority) = priority {
        out.extend_from_slice(&priority);
    }
    out.extend_from_slice(first);
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rest.len().min(MAX_FRAME));
        rest = tail;
        head(
            &mut out,
            chunk.len(),
            CONTINUATION,
            if rest.is_empty() { END_HEADERS } else { 0 },
        );
        out.extend_from_slice(chunk);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(block: &[u8]) -> Vec<(String, String)> {
        hpack::Decoder::new()
            .decode(block)
            .unwrap()
            .into_iter()
            .map(|(n, v)| (String::from_utf8(n).unwrap(), String::from_utf8(v).unwrap()))
            .collect()
    }

    #[test]
    fn a_socket_path_authority_becomes_localhost_and_the_rest_is_kept() {
        let fields = vec![
            (b":method".to_vec(), b"POST".to_vec()),
            (b":scheme".to_vec(), b"http".to_vec()),
            (
                b":path".to_vec(),
                b"/pluginregistration.Registration/GetInfo".to_vec(),
            ),
            (
                b":authority".to_vec(),
                b"/var/lib/kubelet/plugins_registry/glusterfs.aplo.dev-reg.sock".to_vec(),
            ),
            (b"content-type".to_vec(), b"application/grpc".to_vec()),
        ];
        let out = decode(&encode(&fields));
        assert_eq!(out[3], (":authority".into(), "localhost".into()));
        assert_eq!(out[2].1, "/pluginregistration.Registration/GetInfo");
        assert_eq!(out.len(), 5);
        // A valid authority is left alone.
        let fields = vec![(b":authority".to_vec(), b"localhost:9000".to_vec())];
        assert_eq!(decode(&encode(&fields))[0].1, "localhost:9000");
    }

    #[test]
    fn long_values_and_big_blocks_survive_the_round_trip() {
        let long = "x".repeat(40_000);
        let fields = vec![(b"x-long".to_vec(), long.clone().into_bytes())];
        let block = encode(&fields);
        assert_eq!(decode(&block)[0].1, long);
        let framed = frames(END_STREAM, [0, 0, 0, 1], None, &block);
        // One HEADERS and two CONTINUATIONs, END_HEADERS on the last only.
        assert_eq!(framed[3], HEADERS);
        assert_eq!(framed[4], END_STREAM);
        let second = 9 + MAX_FRAME;
        assert_eq!(framed[second + 3], CONTINUATION);
        assert_eq!(framed[second + 4], 0);
        let third = second + 9 + MAX_FRAME;
        assert_eq!(framed[third + 3], CONTINUATION);
        assert_eq!(framed[third + 4], END_HEADERS);
        assert_eq!(framed.len(), 3 * 9 + block.len());
    }

    #[test]
    fn padding_and_priority_are_read_and_bad_frames_refused() {
        let mut payload = vec![2u8]; // pad length
        payload.extend_from_slice(&[0, 0, 0, 3, 16]); // priority
        payload.extend_from_slice(&[0x82]); // :method GET
        payload.extend_from_slice(&[0, 0]); // padding
        let (priority, block) = headers_payload(PADDED | PRIORITY, &payload).unwrap();
        assert_eq!(priority, Some([0, 0, 0, 3, 16]));
        assert_eq!(block, vec![0x82]);
        assert!(headers_payload(PADDED, &[]).is_err());
        assert!(headers_payload(PADDED, &[9, 1]).is_err());
        assert!(headers_payload(PRIORITY, &[0, 0]).is_err());
    }

    /// The byte stream a grpc-go client sends for a dialled socket path
    /// comes out with `localhost` as its authority and every other frame
    /// as it was.
    #[tokio::test]
    async fn rewrite_passes_frames_and_fixes_the_authority() {
        let settings = [0u8, 0, 0, 0x4, 0, 0, 0, 0, 0];
        let fields = vec![
            (b":method".to_vec(), b"POST".to_vec()),
            (b":authority".to_vec(), b"/run/x/reg.sock".to_vec()),
        ];
        let block = encode(&fields);
        // A padded HEADERS frame split across a CONTINUATION.
        let (a, b) = block.split_at(5);
        let mut input = PREFACE.to_vec();
        input.extend_from_slice(&settings);
        let mut payload = vec![1u8];
        payload.extend_from_slice(a);
        payload.push(0);
        input.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
        input.extend_from_slice(&[HEADERS, PADDED, 0, 0, 0, 1]);
        input.extend_from_slice(&payload);
        input.extend_from_slice(&(b.len() as u32).to_be_bytes()[1..]);
        input.extend_from_slice(&[CONTINUATION, END_HEADERS, 0, 0, 0, 1]);
        input.extend_from_slice(b);
        let data = [0u8, 0, 2, 0x0, END_STREAM, 0, 0, 0, 1, 7, 7];
        input.extend_from_slice(&data);

        let mut out = Vec::new();
        rewrite(&mut input.as_slice(), &mut out).await.unwrap();
        assert_eq!(&out[..24], PREFACE);
        assert_eq!(&out[24..33], &settings);
        let headers = &out[33..];
        let length = u32::from_be_bytes([0, headers[0], headers[1], headers[2]]) as usize;
        assert_eq!(headers[3], HEADERS);
        assert_eq!(headers[4], END_HEADERS);
        let fields = decode(&headers[9..9 + length]);
        assert_eq!(fields[1], (":authority".into(), "localhost".into()));
        assert_eq!(&headers[9 + length..], &data);
        // Not HTTP/2 at all: refused.
        let mut sink = Vec::new();
        assert!(
            rewrite(&mut &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..], &mut sink)
                .await
                .is_err()
        );
    }
}
